using EdgeShield.Host;

return await Cli.RunAsync(args);
