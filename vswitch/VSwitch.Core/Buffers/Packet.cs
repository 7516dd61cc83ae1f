using System.Runtime.CompilerServices;
using VSwitch.Core.Flow;
using VSwitch.Core.Pipeline;

namespace VSwitch.Core.Buffers;

/// <summary>
/// One frame in a pooled slot, with the metadata the pipeline carries alongside it.
/// The object is created once per slot and reused: renting and returning allocate nothing.
/// <see cref="Offset"/> is where the frame starts inside the slot; bytes before it are headroom.
/// </summary>
public sealed unsafe class Packet
{
    private readonly byte[] _slab;
    private readonly int _slotBase;
    private readonly int _slotSize;

    internal Packet(PacketPool pool, byte[] slab, int slotBase, int slotSize)
    {
        Pool = pool;
        _slab = slab;
        _slotBase = slotBase;
        _slotSize = slotSize;
        SlotIndex = slotBase / slotSize;
    }

    public PacketPool Pool { get; }
    public int SlotIndex { get; }
    internal bool InUse;

    /// <summary>Start of the frame, counted from the start of the slot.</summary>
    public int Offset { get; private set; }
    public int Length { get; private set; }

    // Metadata: set on receive, read by the stages.
    public int InPort;
    /// <summary>Tunnel key (VNI) the frame arrived with, 0 when it did not come from a tunnel.</summary>
    public uint TunnelId;
    /// <summary>Remote VTEP the frame arrived from or goes to (IPv4 host order, or an IPv6 VTEP's <see cref="Flow.VtepRemote"/> handle), 0 when none.</summary>
    public uint TunnelRemote;
    /// <summary>The VLAN the frame belongs to inside the switch, after ingress normalisation (0 = none).</summary>
    public ushort Vlan;
    public FlowKey Key;
    public DropReason Drop;
    /// <summary>The datapath flow the packet belongs to (set by the flow stage; its actions run next).</summary>
    public FlowEntry? Flow;
    /// <summary>
    /// Set when the frame is a TCP GSO super-frame kept whole (virtio's gso_size: the MSS of the
    /// segments it stands for); 0 for an ordinary frame. Its TCP checksum is partial (the
    /// pseudo-header sum), as the sender's kernel left it. See Ports/Offload/GsoFrame.
    /// </summary>
    public ushort GsoSize;
    /// <summary>virtio_net_hdr gso_type of a super-frame (TCPV4 or TCPV6, with the ECN bit); 0 otherwise.</summary>
    public byte GsoType;

    /// <summary>
    /// Set while the packet is being traced (a live trace claimed it, or a synthetic trace built it):
    /// each stage that handles it records what it did. Null on the normal path.
    /// </summary>
    public PacketTrace? Trace;

    /// <summary>What the conntrack stage found (valid while <c>Key.CtState</c> is non-zero).</summary>
    public PacketCt Ct;

    public int Headroom => Offset;
    public int Tailroom => _slotSize - Offset - Length;
    public int Capacity => _slotSize;

    /// <summary>The frame's bytes.</summary>
    public Span<byte> Data
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => new(_slab, _slotBase + Offset, Length);
    }

    /// <summary>Address of the frame's first byte (the slab is pinned).</summary>
    public byte* DataPointer => Pool.SlotPointer(_slotBase) + Offset;

    /// <summary>Address of the slot's first byte.</summary>
    public byte* SlotPointer => Pool.SlotPointer(_slotBase);

    /// <summary>
    /// Makes the packet empty with the pool's default headroom and returns the room a receive may
    /// fill; then call <see cref="SetLength"/> with what arrived.
    /// </summary>
    public Span<byte> ReceiveBuffer()
    {
        Offset = Pool.Headroom;
        Length = 0;
        return new Span<byte>(_slab, _slotBase + Offset, _slotSize - Offset);
    }

    /// <summary>Makes the packet a copy of <paramref name="frame"/> at the default headroom (a frame read elsewhere, a test frame).</summary>
    public void CopyFrom(ReadOnlySpan<byte> frame)
    {
        frame.CopyTo(ReceiveBuffer());
        Length = frame.Length;
    }

    /// <summary>Room available for a receive at the default headroom.</summary>
    public int ReceiveCapacity => _slotSize - Pool.Headroom;

    public void SetLength(int length)
    {
        if ((uint)length > (uint)(_slotSize - Offset))
            throw new ArgumentOutOfRangeException(nameof(length), length, "frame longer than its slot");
        Length = length;
    }

    /// <summary>Grows the frame at the front by <paramref name="count"/> bytes (push a header) and returns the new front.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Span<byte> Prepend(int count)
    {
        if ((uint)count > (uint)Offset)
            throw new InvalidOperationException($"not enough headroom: need {count}, have {Offset}");
        Offset -= count;
        Length += count;
        return new Span<byte>(_slab, _slotBase + Offset, count);
    }

    /// <summary>Removes <paramref name="count"/> bytes from the front (pop a header).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void TrimFront(int count)
    {
        if ((uint)count > (uint)Length)
            throw new InvalidOperationException($"cannot trim {count} bytes from a {Length}-byte frame");
        Offset += count;
        Length -= count;
    }

    public void TrimEnd(int newLength)
    {
        if ((uint)newLength > (uint)Length) throw new ArgumentOutOfRangeException(nameof(newLength));
        Length = newLength;
    }

    /// <summary>Copies frame and metadata from another packet (flooding to several ports).</summary>
    public void CopyFrom(Packet other)
    {
        Offset = Math.Min(other.Offset, _slotSize - other.Length);
        Length = other.Length;
        other.Data.CopyTo(Data);
        CopyMetadataFrom(other);
        GsoSize = other.GsoSize;
        GsoType = other.GsoType;
    }

    /// <summary>Copies what the pipeline knows about a frame, but not the frame nor its GSO marks (a segment of a super-frame takes this).</summary>
    public void CopyMetadataFrom(Packet other)
    {
        InPort = other.InPort;
        TunnelId = other.TunnelId;
        TunnelRemote = other.TunnelRemote;
        Vlan = other.Vlan;
        Key = other.Key;
        Ct = other.Ct;
        Drop = other.Drop;
        Trace = other.Trace;
        Flow = other.Flow;
    }

    /// <summary>Gives the buffer back to its pool.</summary>
    public void Release() => Pool.Return(this);

    internal void OnRent()
    {
        InUse = true;
        Offset = Pool.Headroom;
        Length = 0;
        InPort = 0;
        TunnelId = 0;
        TunnelRemote = 0;
        Vlan = 0;
        Drop = DropReason.None;
        Trace = null;
        Flow = null;
        GsoSize = 0;
        GsoType = 0;
    }
}
