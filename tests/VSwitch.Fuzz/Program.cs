using SharpFuzz;
using VSwitch.Fuzz;

[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

// VSwitch.Fuzz list                      the targets, one a line: NAME<TAB>description
// VSwitch.Fuzz instrument TARGET         what tools/fuzz.sh gives sharpfuzz: ASSEMBLY [PREFIX...] a line
// VSwitch.Fuzz dict TARGET               the target's AFL dictionary file name (under dict/), or nothing
// VSwitch.Fuzz run TARGET                under afl-fuzz: SharpFuzz's out-of-process loop over AFL's inputs
// VSwitch.Fuzz smoke TARGET CORPUS N      N random mutations of the seeds in process, no AFL (a quick look)
// VSwitch.Fuzz replay TARGET FILE...     each file once, in process: "ok" or the exception (reproduces a crash)
if (args.Length == 0) return Usage();
switch (args[0])
{
    case "list":
        foreach (var t in FuzzTargets.All) Console.WriteLine($"{t.Name}\t{t.Description}");
        return 0;
    case "instrument" when args.Length == 2 && FuzzTargets.Find(args[1]) is { } target:
        foreach (var i in target.Instrument) Console.WriteLine(string.Join(' ', [i.Assembly, .. i.Prefixes]));
        return 0;
    case "dict" when args.Length == 2 && FuzzTargets.Find(args[1]) is { } target:
        if (target.Dictionary is { } dict) Console.WriteLine(dict);
        return 0;
    case "run" when args.Length == 2 && FuzzTargets.Find(args[1]) is { } target:
        // The stream is AFL's current input; an exception that escapes Execute is reported as a crash.
        Fuzzer.OutOfProcess.Run(stream =>
        {
            using var buffer = new MemoryStream();
            stream.CopyTo(buffer);
            target.Execute(buffer.ToArray());
        });
        return 0;
    case "smoke" when args.Length == 4 && FuzzTargets.Find(args[1]) is { } target && int.TryParse(args[3], out int count):
        return Smoke.Run(target, args[2], count);
    case "replay" when args.Length >= 3 && FuzzTargets.Find(args[1]) is { } target:
        int bad = 0;
        foreach (var file in args[2..])
        {
            try { target.Execute(File.ReadAllBytes(file)); Console.WriteLine($"{file}: ok"); }
            catch (Exception e) { bad++; Console.WriteLine($"{file}: {e}"); }
        }
        return bad == 0 ? 0 : 1;
    default:
        return Usage();
}

static int Usage()
{
    Console.Error.WriteLine("usage: VSwitch.Fuzz list | instrument TARGET | dict TARGET | run TARGET | smoke TARGET CORPUS N | replay TARGET FILE...");
    Console.Error.WriteLine("targets: " + string.Join(", ", FuzzTargets.All.Select(t => t.Name)));
    return 2;
}
