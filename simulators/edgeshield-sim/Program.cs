using EdgeShield.Simulators.Cli;

return await Cli.RunAsync(args);
