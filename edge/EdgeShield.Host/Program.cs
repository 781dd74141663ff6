using EdgeShield.Gateway;
using EdgeShield.Host;

// Before any socket exists (the runtime reads it once): socket continuations run on the epoll
// threads, which the frame path never blocks (bench/RESULTS.md: ~30 % less CPU per request).
EdgeGateway.PreferInlineSocketCompletions();
return await Cli.RunAsync(args);
