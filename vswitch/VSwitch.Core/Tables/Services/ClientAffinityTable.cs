using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace VSwitch.Core.Tables.Services;

/// <summary>
/// Client-IP session affinity with a timeout, as Kubernetes' <c>sessionAffinityConfig.clientIP.timeoutSeconds</c>
/// and IPVS persistence have it: a client that opened a connection to a service within the timeout goes back to
/// the backend it had, even when backends were added, removed or re-weighted in the meantime (the Maglev hash of
/// the client's address alone would move about 1/N of the clients when a backend is added). A client not seen for
/// the timeout is hashed again.
/// <para>
/// One table per service, shared by its ports' pickers (a client meets one backend on every port of the service,
/// as in Kubernetes) and kept across the pickers rebuilt around it. Backends are remembered by their label, which
/// is stable for a (service, backend) pair.
/// </para>
/// <para>
/// Used only when a connection is new (the conntrack stage's slow path), never per packet of a tracked
/// connection. The lock is short: one dictionary lookup or insert; the daemon's reaper takes it for one pass over
/// at most <see cref="Capacity"/> entries every few seconds; no API call takes it. Inserting allocates only when the
/// dictionary grows. When the table is full a new client is not remembered (it is hashed, as without a table) and
/// <see cref="Full"/> counts it.
/// </para>
/// </summary>
public sealed class ClientAffinityTable
{
    /// <summary>Default bound on remembered clients per service: about 3 MB at most.</summary>
    public const int DefaultCapacity = 65536;

    private readonly Dictionary<UInt128, Entry> _clients = new(256);
    private readonly Lock _gate = new();
    private readonly Func<long> _nowMs;
    private long _timeoutMs;

    private struct Entry
    {
        public int Label;
        public long LastMs;
    }

    public ClientAffinityTable(int timeoutSeconds, int capacity = DefaultCapacity, Func<long>? nowMs = null)
    {
        if (capacity < 1) throw new ArgumentOutOfRangeException(nameof(capacity), capacity, "must be at least 1");
        Capacity = capacity;
        _nowMs = nowMs ?? (static () => Environment.TickCount64);
        TimeoutSeconds = timeoutSeconds;
    }

    public int Capacity { get; }

    /// <summary>How long a client is remembered after its last new connection. Changing it applies to every entry at once.</summary>
    public int TimeoutSeconds
    {
        get => (int)(Volatile.Read(ref _timeoutMs) / 1000);
        set
        {
            if (value < 1) throw new ArgumentOutOfRangeException(nameof(value), value, "affinity timeout must be at least 1 s");
            Volatile.Write(ref _timeoutMs, value * 1000L);
        }
    }

    /// <summary>Clients remembered now (expired ones included until the next reap).</summary>
    public int Count => Volatile.Read(ref _count);
    private int _count;

    /// <summary>New clients not remembered because the table was full.</summary>
    public long Full;
    /// <summary>New connections sent to a remembered backend.</summary>
    public long Hits;

    /// <summary>
    /// The backend label this client had within the timeout, refreshed; or false. <paramref name="isEligible"/>
    /// says whether a label can still take new connections (present, healthy, not draining): when not, the client is
    /// forgotten and the caller picks again.
    /// </summary>
    public bool TryRecall<TCheck>(UInt128 client, TCheck isEligible, out int label) where TCheck : struct, ILabelCheck
    {
        long now = _nowMs();
        lock (_gate)
        {
            ref var e = ref CollectionsMarshal.GetValueRefOrNullRef(_clients, client);
            if (!Unsafe.IsNullRef(ref e) && now - e.LastMs < _timeoutMs && isEligible.Eligible(e.Label))
            {
                e.LastMs = now; // refreshed in place: one lookup
                label = e.Label;
                Hits++;
                return true;
            }
        }
        label = 0;
        return false;
    }

    /// <summary>Remembers the backend a client was just sent to.</summary>
    public void Remember(UInt128 client, int label)
    {
        long now = _nowMs();
        lock (_gate)
        {
            if (!_clients.ContainsKey(client) && _clients.Count >= Capacity)
            {
                Full++;
                return;
            }
            _clients[client] = new Entry { Label = label, LastMs = now };
            Volatile.Write(ref _count, _clients.Count);
        }
    }

    /// <summary>Forgets the clients not seen for the timeout; returns how many. The daemon calls it every few seconds.</summary>
    public int Reap()
    {
        long now = _nowMs();
        int removed = 0;
        lock (_gate)
        {
            foreach (var (client, e) in _clients)
                if (now - e.LastMs >= _timeoutMs)
                {
                    _clients.Remove(client); // allowed while enumerating (.NET Core 3.0+)
                    removed++;
                }
            Volatile.Write(ref _count, _clients.Count);
        }
        return removed;
    }
}

/// <summary>Whether a backend label may take a new connection now (a struct, so that the check is inlined).</summary>
public interface ILabelCheck
{
    bool Eligible(int label);
}
