// The telemetry tests start brokers, Mosquitto processes and 50 ms pollers; run them one class at a
// time so that, beside the other test assemblies' timing-sensitive tests, they add little load at once.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
