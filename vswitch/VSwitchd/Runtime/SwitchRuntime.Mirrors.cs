using System.Text.Json;
using VSwitch.Api;
using VSwitch.Core.Pipeline;

namespace VSwitchd.Runtime;

/// <summary>
/// Port mirrors (SPAN), as Open vSwitch's Mirror table has them: select ports and a direction (and a VLAN), an output
/// port, counters. Kept by name in the state database with the port names they refer to; the datapath gets them
/// resolved to port ids, published again whenever the ports change (a port that is gone is left out until it is back).
/// </summary>
public sealed partial class SwitchRuntime
{
    private static readonly JsonSerializerOptions MirrorJson = new(JsonSerializerDefaults.Web);
    private readonly object _mirrorGate = new();
    // By name, in the order they were made; each with its counter slot and the slot's count when it was made.
    private readonly List<(MirrorRequest Config, int Slot, long BasePackets, long BaseBytes)> _mirrors = [];
    private bool _mirrorsFollowTopology;

    /// <summary>Checks a mirror, adds it, stores it (unless restoring) and makes the datapath copy frames for it.</summary>
    public MirrorView AddMirror(MirrorRequest r, bool persist = true)
    {
        var m = CheckMirror(r);
        int slot;
        lock (_mirrorGate)
        {
            if (_mirrors.Any(x => x.Config.Name == m.Name)) throw new ConflictException($"mirror '{m.Name}' already exists");
            if (_mirrors.Count >= PortMirror.MaxMirrors) throw new ConflictException($"there are {PortMirror.MaxMirrors} mirrors already: delete one first");
            var outputs = _mirrors.Select(x => x.Config.Output!).ToHashSet();
            var sources = _mirrors.SelectMany(x => x.Config.Sources!).ToHashSet();
            // A copy is never copied again: an output port is no mirror's source, a source no mirror's output.
            if (sources.Contains(m.Output!)) throw new InvalidRequestException($"output '{m.Output}' is a source of another mirror: its copies would be copied again");
            if (m.Sources!.FirstOrDefault(outputs.Contains) is { } s) throw new InvalidRequestException($"source '{s}' is the output of another mirror: its copies would be copied again");
            slot = Enumerable.Range(0, PortMirror.MaxMirrors).First(i => _mirrors.All(x => x.Slot != i));
            // The slot's counters from a mirror deleted before: this one counts from here.
            var (packets, bytes) = Datapath.ReadMirrorCounters(slot);
            _mirrors.Add((m, slot, packets, bytes));
            if (persist) Store?.SaveMirror(m.Name!, JsonSerializer.Serialize(m, MirrorJson));
            PublishMirrors();
        }
        return GetMirror(m.Name!);
    }

    public void RemoveMirror(string name)
    {
        lock (_mirrorGate)
        {
            int at = _mirrors.FindIndex(x => x.Config.Name == name);
            if (at < 0) throw new NotFoundException($"no mirror named '{name}'");
            _mirrors.RemoveAt(at);
            Store?.DeleteMirror(name);
            PublishMirrors();
        }
    }

    public MirrorView[] ListMirrors()
    {
        List<(MirrorRequest Config, int Slot, long BasePackets, long BaseBytes)> list;
        lock (_mirrorGate) list = [.. _mirrors];
        return list.Select(x =>
        {
            var (packets, bytes) = Datapath.ReadMirrorCounters(x.Slot);
            var c = x.Config;
            return new MirrorView(c.Name!, c.Sources!, c.Direction!, c.Vlan, c.Output!, packets - x.BasePackets, bytes - x.BaseBytes);
        }).ToArray();
    }

    public MirrorView GetMirror(string name) => ListMirrors().FirstOrDefault(m => m.Name == name) ?? throw new NotFoundException($"no mirror named '{name}'");

    /// <summary>The mirrors stored in the state database, added again at start.</summary>
    private void RestoreMirrors()
    {
        if (Store is null) return;
        foreach (string body in Store.Mirrors())
        {
            try
            {
                var r = JsonSerializer.Deserialize<MirrorRequest>(body, MirrorJson)!;
                AddMirror(r, persist: false);
            }
            catch (Exception e) when (e is SwitchRuntimeException or JsonException)
            {
                _log.LogWarning("stored mirror {Mirror} no longer applies: {Error}", body, e.Message);
            }
        }
    }

    /// <summary>The request with its defaults filled in, or a refusal naming the bad value.</summary>
    private MirrorRequest CheckMirror(MirrorRequest r)
    {
        if (string.IsNullOrWhiteSpace(r.Name)) throw new InvalidRequestException("a mirror needs a name");
        if (r.Name.Length > 64 || r.Name.Any(c => char.IsWhiteSpace(c) || char.IsControl(c) || c == '/'))
            throw new InvalidRequestException($"mirror name '{r.Name}' must be 1..64 characters, without blanks or '/'");
        if (r.Sources is not { Length: > 0 }) throw new InvalidRequestException($"mirror '{r.Name}': give at least one source port");
        if (string.IsNullOrWhiteSpace(r.Output)) throw new InvalidRequestException($"mirror '{r.Name}': give the output port");
        var topo = Datapath.Topology;
        foreach (var s in r.Sources)
            if (topo.PortByName(s) is null) throw new NotFoundException($"mirror '{r.Name}': no port named '{s}'");
        var output = topo.PortByName(r.Output) ?? throw new NotFoundException($"mirror '{r.Name}': no port named '{r.Output}'");
        if (output.IsTunnel) throw new InvalidRequestException($"mirror '{r.Name}': output '{r.Output}' is the tunnel port: mirror to a local port");
        if (r.Sources.Contains(r.Output)) throw new InvalidRequestException($"mirror '{r.Name}': output '{r.Output}' is also a source");
        string direction = r.Direction?.ToLowerInvariant() switch
        {
            null or "both" => "both",
            "rx" => "rx",
            "tx" => "tx",
            _ => throw new InvalidRequestException($"mirror '{r.Name}': direction '{r.Direction}' must be rx, tx or both"),
        };
        if (r.Vlan is int v && v is < 0 or > 4095) throw new InvalidRequestException($"mirror '{r.Name}': vlan {v} must be 0..4095");
        return r with { Sources = r.Sources.Distinct().ToArray(), Direction = direction };
    }

    /// <summary>Resolves the mirrors' port names against the topology now and hands them to the datapath (under the mirror gate).</summary>
    private void PublishMirrors()
    {
        if (!_mirrorsFollowTopology)
        {
            _mirrorsFollowTopology = true;
            // Raised under the datapath's control lock: republish later, from the thread pool, never blocking it.
            Datapath.TopologyChanged += _ => ThreadPool.QueueUserWorkItem(_ => { lock (_mirrorGate) PublishMirrors(); });
        }
        var topo = Datapath.Topology;
        var set = new List<PortMirror>();
        foreach (var (c, slot, _, _) in _mirrors)
        {
            if (topo.PortByName(c.Output!) is not { } output) continue;
            var ids = c.Sources!.Select(s => topo.PortByName(s)?.Id ?? -1).Where(id => id > 0).ToArray();
            set.Add(new PortMirror(c.Name!, slot, c.Direction is "rx" or "both" ? ids : [], c.Direction is "tx" or "both" ? ids : [], c.Vlan ?? -1, output.Id));
        }
        Datapath.SetMirrors([.. set]);
    }
}
