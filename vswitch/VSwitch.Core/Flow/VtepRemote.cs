using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using VSwitch.Core.Wire;

namespace VSwitch.Core.Flow;

/// <summary>
/// The 32-bit remote VTEP handle that the flow key (<see cref="FlowKey.TunRemote"/>), the packet, the MAC
/// table and the tunnel output action carry. An IPv4 VTEP is its own address (host order), so `tun_src=`
/// rules and IPv4 overlays are unchanged; an IPv6 VTEP is interned here and its handle is its index plus one,
/// a number in 0.0.0.0/8 (1..<see cref="Capacity"/>), which no IPv4 VTEP can have (RFC 1122 forbids 0/8 as a
/// source or destination). 0 stays "no tunnel".
/// <para>
/// Why a handle and not a 128-bit remote: the flow key is hashed and compared per packet, and the MAC table
/// entry is a few words; 12 more bytes in each for a rare underlay would cost every packet. Why one table for
/// the process and not one per endpoint: a handle then names the same address in every table (MAC table,
/// flows, rules, traces), text forms need no endpoint, and a daemon has one endpoint anyway. Entries are never
/// removed (a handle may sit in a cached flow or a MAC entry): the table is bounded, and an address that
/// finds it full gets no handle (the receiver drops its frames as <see cref="DropReason.VtepTableFull"/>,
/// counted, and <see cref="Refused"/> counts them here).
/// </para>
/// Lookups are lock-free (a concurrent dictionary read, an array read); adding takes a lock, once per new
/// address, never on a packet of a known remote.
/// </summary>
public static class VtepRemote
{
    /// <summary>How many IPv6 VTEP addresses the process can name.</summary>
    public const int Capacity = 4096;

    /// <summary>The process's table: the one every handle in a flow key, MAC entry or action refers to.</summary>
    public static VtepRemoteTable Shared { get; } = new(Capacity);

    /// <summary>IPv6 addresses interned so far.</summary>
    public static int Count => Shared.Count;
    /// <summary>Addresses that found the table full (each time one was asked for).</summary>
    public static long Refused => Shared.Refused;

    /// <summary>True when <paramref name="remote"/> is the handle of an IPv6 VTEP (not an IPv4 address, not 0).</summary>
    public static bool IsIPv6(uint remote) => remote - 1 < Capacity;

    /// <summary>The handle of an IPv6 VTEP (big-endian, as <see cref="AddressFormat.ToKey"/> gives it); false when the table is full.</summary>
    public static bool TryIntern(UInt128 address, out uint handle) => Shared.TryIntern(address, out handle);

    /// <summary>The handle of an IPv6 VTEP already interned; false for one never seen (nothing is added).</summary>
    public static bool TryGet(UInt128 address, out uint handle) => Shared.TryGet(address, out handle);

    /// <summary>The IPv6 address behind a handle (0 for anything else).</summary>
    public static UInt128 Address6(uint handle) => Shared.Address6(handle);

    /// <summary>The handle of a VTEP address of either family; throws <see cref="ArgumentException"/> naming it when it cannot be one.</summary>
    public static uint FromAddress(IPAddress ip)
    {
        if (ip.AddressFamily == AddressFamily.InterNetwork)
        {
            uint v4 = (uint)AddressFormat.ToKey(ip);
            if (v4 >> 24 == 0) throw new ArgumentException($"'{ip}' is in 0.0.0.0/8 and cannot be a VTEP address");
            return v4;
        }
        if (ip.AddressFamily != AddressFamily.InterNetworkV6 || ip.IsIPv4MappedToIPv6 || ip.Equals(IPAddress.IPv6Any) || ip.IsIPv6Multicast)
            throw new ArgumentException($"'{ip}' is not a unicast IPv6 or IPv4 address");
        if (!TryIntern(AddressFormat.ToKey(ip), out uint h))
            throw new ArgumentException($"'{ip}': the table of IPv6 VTEPs is full ({Capacity})");
        return h;
    }

    /// <summary>The address a handle stands for, for the API and traces (allocates; never the hot path).</summary>
    public static IPAddress ToAddress(uint remote)
    {
        if (!IsIPv6(remote)) return new IPAddress(System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(remote));
        Span<byte> b = stackalloc byte[16];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt128BigEndian(b, Address6(remote));
        return new IPAddress(b);
    }

    /// <summary>The text form: dotted quad for IPv4, RFC 5952 for IPv6 (allocates; never the hot path).</summary>
    public static string Format(uint remote) => IsIPv6(remote) ? AddressFormat.IPv6(Address6(remote)) : AddressFormat.IPv4(remote);
}

/// <summary>
/// IPv6 VTEP addresses and their handles (1..capacity): bounded, never shrinking (see <see cref="VtepRemote"/> for why).
/// Lookups lock-free; adding under a lock, once per new address.
/// </summary>
public sealed class VtepRemoteTable
{
    private readonly ConcurrentDictionary<UInt128, uint> _handles = new();
    private readonly UInt128[] _addresses;
    private readonly Lock _gate = new();
    private int _count;
    private long _refused;

    public VtepRemoteTable(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(capacity, VtepRemote.Capacity); // handles must stay in 0.0.0.0/8's low range
        _addresses = new UInt128[capacity + 1];
    }

    public int Capacity => _addresses.Length - 1;
    public int Count => Volatile.Read(ref _count);
    public long Refused => Interlocked.Read(ref _refused);

    public bool TryIntern(UInt128 address, out uint handle)
    {
        if (_handles.TryGetValue(address, out handle)) return true;
        lock (_gate)
        {
            if (_handles.TryGetValue(address, out handle)) return true;
            if (_count >= Capacity)
            {
                Interlocked.Increment(ref _refused);
                return false;
            }
            handle = (uint)_count + 1;
            _addresses[handle] = address;
            Volatile.Write(ref _count, _count + 1); // the address is in place before any reader can get its handle
            _handles[address] = handle;
            return true;
        }
    }

    public bool TryGet(UInt128 address, out uint handle) => _handles.TryGetValue(address, out handle);

    public UInt128 Address6(uint handle) => handle - 1 < (uint)Count ? _addresses[handle] : UInt128.Zero;
}
