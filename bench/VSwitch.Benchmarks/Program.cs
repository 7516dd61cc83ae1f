using BenchmarkDotNet.Running;

// Run everything:   dotnet run -c Release -- --filter '*' --job short
// Or use bench/run-benchmarks.sh (short job by default, --full for the default job).
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
