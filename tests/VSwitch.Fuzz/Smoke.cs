namespace VSwitch.Fuzz;

/// <summary>
/// A quick look without AFL: random byte mutations of the seeds (flips, overwrites with boundary
/// values, cuts, splices), run in process. No coverage feedback, so no substitute for tools/fuzz.sh;
/// it finds the shallow crashes in seconds. Deterministic for a given seed number.
/// </summary>
public static class Smoke
{
    public static int Run(FuzzTarget target, string corpusDir, int count, int seed = 1)
    {
        var seeds = Directory.GetFiles(corpusDir).Order(StringComparer.Ordinal).Select(File.ReadAllBytes).ToArray();
        if (seeds.Length == 0) { Console.Error.WriteLine($"no seeds in {corpusDir}"); return 2; }
        if (FindCrash(target, seeds, count, seed) is { } crash)
        {
            string file = Path.Combine(Path.GetTempPath(), $"vswitch-smoke-{target.Name}-{crash.Index}");
            File.WriteAllBytes(file, crash.Input);
            Console.WriteLine($"input {crash.Index} (saved as {file}): {crash.Error}");
            return 1;
        }
        Console.WriteLine($"{target.Name}: {count} mutated inputs, no unexpected exception");
        return 0;
    }

    /// <summary>The first mutated input that throws an unexpected exception, or null.</summary>
    public static (int Index, byte[] Input, Exception Error)? FindCrash(FuzzTarget target, byte[][] seeds, int count, int seed = 1)
    {
        var rng = new Random(seed);
        for (int i = 0; i < count; i++)
        {
            var input = Mutate(seeds[rng.Next(seeds.Length)], seeds[rng.Next(seeds.Length)], rng);
            try { target.Execute(input); }
            catch (Exception e) { return (i, input, e); }
        }
        return null;
    }

    private static readonly byte[] Boundary = [0x00, 0x01, 0x7F, 0x80, 0xFF, 0x08, 0x40, 0x86, 0xDD, 0x81, 0x88, 0xA8, (byte)'n', (byte)',', (byte)'=', (byte)'"', (byte)'['];

    private static byte[] Mutate(byte[] a, byte[] b, Random rng)
    {
        var x = new List<byte>(a);
        int edits = 1 + rng.Next(8);
        for (int e = 0; e < edits; e++)
        {
            int at = x.Count == 0 ? 0 : rng.Next(x.Count);
            switch (rng.Next(6))
            {
                case 0 when x.Count > 0: x[at] ^= (byte)(1 << rng.Next(8)); break;
                case 1 when x.Count > 0: x[at] = Boundary[rng.Next(Boundary.Length)]; break;
                case 2 when x.Count > 0: x.RemoveRange(at, rng.Next(x.Count - at) + 1); break;
                case 3: x.InsertRange(at, b.Skip(rng.Next(Math.Max(1, b.Length))).Take(rng.Next(16) + 1)); break;
                case 4 when x.Count > 0: x[at] = (byte)rng.Next(256); break;
                default: x.Insert(at, Boundary[rng.Next(Boundary.Length)]); break;
            }
        }
        return x.ToArray();
    }
}
