using VSwitch.Core.Buffers;
using VSwitch.Core.Tables;

namespace VSwitch.Core.Pipeline;

/// <summary>
/// How one address family resolves a next hop, for <see cref="NeighborHold{TAddress, TResolution}"/>:
/// its table, its question (ARP request or neighbour solicitation), the ICMP error when nobody
/// answers, and the words of a trace. Implemented by structs so that the JIT compiles the hold
/// once per family with these calls inlined, as if written twice.
/// </summary>
internal interface INeighborResolution<TAddress> where TAddress : unmanaged, IEquatable<TAddress>
{
    static abstract NeighborCache<TAddress> Table(Datapath dp);
    /// <summary>Asks who has <paramref name="target"/> on the network (the first request; the table's timers send the rest).</summary>
    static abstract void Solicit(DatapathContext ctx, ushort network, TAddress target);
    /// <summary>Tells the sender its packet's next hop never answered.</summary>
    static abstract void SendUnreachable(DatapathContext ctx, Packet p);
    static abstract string Format(TAddress address);
    /// <summary>What the trace says is sent: "ARP", "a neighbour solicitation".</summary>
    static abstract string Question { get; }
    /// <summary>What the trace says the packet waits for: "answers ARP", "answers the solicitation".</summary>
    static abstract string Answer { get; }
    /// <summary>What the trace adds when the first request went out with this packet.</summary>
    static abstract string Sent { get; }
}

/// <summary>IPv4: a broadcast ARP request; ICMP host unreachable when it is not answered.</summary>
internal readonly struct ArpResolution : INeighborResolution<uint>
{
    public static NeighborCache<uint> Table(Datapath dp) => dp.Neighbors;
    public static void Solicit(DatapathContext ctx, ushort network, uint target) => ctx.SendArpRequest(network, target);
    public static void SendUnreachable(DatapathContext ctx, Packet p) => ctx.SendIcmpError(p, Router.IcmpUnreachable, Router.CodeHost, 0);
    public static string Format(uint address) => Wire.AddressFormat.IPv4(address);
    public static string Question => "ARP";
    public static string Answer => "answers ARP";
    public static string Sent => " (request sent)";
}

/// <summary>
/// IPv6: a neighbour solicitation to the target's solicited-node multicast group (unicast 0: not a
/// probe of a known MAC); ICMPv6 address unreachable when it is not answered (RFC 4443 code 3).
/// </summary>
internal readonly struct NdResolution : INeighborResolution<UInt128>
{
    public static NeighborCache<UInt128> Table(Datapath dp) => dp.Neighbors6;
    public static void Solicit(DatapathContext ctx, ushort network, UInt128 target) => ctx.SendNeighborSolicitation(network, target, 0);
    public static void SendUnreachable(DatapathContext ctx, Packet p) => ctx.SendIcmpError(p, Router6.IcmpUnreachable, Router6.CodeAddressUnreachable, 0);
    public static string Format(UInt128 address) => Wire.AddressFormat.IPv6(address);
    public static string Question => "a neighbour solicitation";
    public static string Answer => "answers the solicitation";
    public static string Sent => " (sent)";
}
