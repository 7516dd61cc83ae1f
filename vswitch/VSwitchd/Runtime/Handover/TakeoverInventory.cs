namespace VSwitchd.Runtime.Handover;

/// <summary>
/// Successor side: the descriptors a predecessor handed over, by port name, until the runtime takes each (a port
/// it builds from the state database under that name). What nobody takes is closed once the successor runs (a port
/// removed in between, say), so no descriptor stays open by mistake.
/// </summary>
public sealed class TakeoverInventory(OfferMessage offer, int[] fds)
{
    private readonly Dictionary<string, OfferedPort> _ports = offer.Ports.ToDictionary(p => p.Name);

    public OfferMessage Offer { get; } = offer;
    public int ApiFd => fds[Offer.ApiFd];
    public int LockFd => fds[Offer.LockFd];
    public int Adopted { get; private set; }

    /// <summary>The port's descriptors (removed from the inventory), or null when none was handed over under that name.</summary>
    public (OfferedPort Port, int[] Fds)? Take(string name)
    {
        lock (_ports)
        {
            if (!_ports.Remove(name, out var p)) return null;
            Adopted++;
            return (p, p.Fds.Select(i => fds[i]).ToArray());
        }
    }

    public bool Has(string name)
    {
        lock (_ports) return _ports.ContainsKey(name);
    }

    /// <summary>Closes the descriptors of ports nobody took; returns their names.</summary>
    public List<string> CloseUntaken()
    {
        lock (_ports)
        {
            var names = _ports.Keys.ToList();
            foreach (var p in _ports.Values)
                foreach (int i in p.Fds) Tmds.Linux.LibC.close(fds[i]);
            _ports.Clear();
            return names;
        }
    }
}
