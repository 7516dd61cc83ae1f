namespace VSwitch.Core.Ports.AfXdp;

/// <summary>
/// One of an AF_XDP socket's four single-producer/single-consumer rings, mapped from the kernel: a
/// producer index, a consumer index, a flags word and a power-of-two array of entries (16-byte
/// <see cref="XdpDesc"/> for rx/tx, 8-byte UMEM addresses for fill/completion). Indices are free-running
/// 32-bit counters that wrap; the slot is index &amp; mask, and "entries in the ring" is producer - consumer
/// in unsigned arithmetic, which stays right across the wrap.
/// <para>
/// As libxdp does, each side keeps a cached copy of the other side's index and reads the shared one
/// only when the cache says there is not enough: one acquire load per batch, not per frame. Our own
/// index is published with a release store after the entries are written (producer) or read
/// (consumer), which is the ordering the kernel's side pairs with.
/// </para>
/// <para>
/// Used by one thread at a time (the receive side by the thread that owns the port; the tx and
/// completion rings under the port's transmit flag). Works over any memory: the unit tests drive it
/// over native memory and play the kernel's side.
/// </para>
/// </summary>
public sealed unsafe class XskRing
{
    private readonly uint* _producer;
    private readonly uint* _consumer;
    private readonly uint* _flags;
    private readonly byte* _entries;
    private readonly int _entrySize;
    private uint _cachedProducer;
    private uint _cachedConsumer;

    public uint Size { get; }
    public uint Mask { get; }

    public XskRing(byte* map, in XdpRingOffset offsets, uint size, int entrySize)
    {
        if (size == 0 || (size & (size - 1)) != 0) throw new ArgumentOutOfRangeException(nameof(size), size, "ring size must be a power of two");
        _producer = (uint*)(map + offsets.Producer);
        _consumer = (uint*)(map + offsets.Consumer);
        _flags = (uint*)(map + offsets.Flags);
        _entries = map + offsets.Desc;
        _entrySize = entrySize;
        Size = size;
        Mask = size - 1;
        _cachedProducer = Volatile.Read(ref *_producer);
        _cachedConsumer = Volatile.Read(ref *_consumer);
    }

    /// <summary>
    /// Reads both shared indices again, dropping what the caches held: a successor process that mapped the ring
    /// while its predecessor still used it calls this once the predecessor stopped, and goes on from where it left.
    /// </summary>
    public void Resync()
    {
        _cachedProducer = Volatile.Read(ref *_producer);
        _cachedConsumer = Volatile.Read(ref *_consumer);
    }

    /// <summary>The shared producer index as the other side last published it (or this side, if it produces).</summary>
    public uint SharedProducer => Volatile.Read(ref *_producer);

    /// <summary>The shared consumer index.</summary>
    public uint SharedConsumer => Volatile.Read(ref *_consumer);

    /// <summary>The descriptor at absolute index <paramref name="index"/> (masked): what a ring still holds once produced.</summary>
    public ref readonly XdpDesc DescAt(uint index) => ref *(XdpDesc*)(_entries + (nint)(index & Mask) * _entrySize);

    /// <summary>The kernel asks to be woken (sendto for tx, recvfrom/poll for fill) before it looks at this ring again.</summary>
    public bool NeedsWakeup => (Volatile.Read(ref *_flags) & Xsk.XDP_RING_NEED_WAKEUP) != 0;

    /// <summary>The next index this side will produce (producer side) or consume (consumer side).</summary>
    public uint ProducerIndex => _cachedProducer;
    public uint ConsumerIndex => _cachedConsumer;

    // ---- producer side (fill, tx) ----

    /// <summary>How many entries, up to <paramref name="wanted"/>, can be written now.</summary>
    public uint Free(uint wanted)
    {
        uint free = Size - (_cachedProducer - _cachedConsumer);
        if (free >= wanted) return wanted;
        _cachedConsumer = Volatile.Read(ref *_consumer);
        free = Size - (_cachedProducer - _cachedConsumer);
        return free < wanted ? free : wanted;
    }

    /// <summary>The UMEM address slot <paramref name="i"/> entries after the producer index (fill).</summary>
    public ref ulong AddressToProduce(uint i) => ref *(ulong*)(_entries + (nint)((_cachedProducer + i) & Mask) * _entrySize);

    /// <summary>The descriptor slot <paramref name="i"/> entries after the producer index (tx).</summary>
    public ref XdpDesc DescToProduce(uint i) => ref *(XdpDesc*)(_entries + (nint)((_cachedProducer + i) & Mask) * _entrySize);

    /// <summary>Hands <paramref name="n"/> written entries to the other side.</summary>
    public void Submit(uint n)
    {
        _cachedProducer += n;
        Volatile.Write(ref *_producer, _cachedProducer);
    }

    /// <summary>Entries the other side has not consumed yet (producer side: still queued for the kernel).</summary>
    public uint Outstanding => _cachedProducer - Volatile.Read(ref *_consumer);

    // ---- consumer side (rx, completion) ----

    /// <summary>How many entries, up to <paramref name="wanted"/>, can be read now.</summary>
    public uint Available(uint wanted)
    {
        uint ready = _cachedProducer - _cachedConsumer;
        if (ready < wanted)
        {
            _cachedProducer = Volatile.Read(ref *_producer);
            ready = _cachedProducer - _cachedConsumer;
        }
        return ready < wanted ? ready : wanted;
    }

    /// <summary>The UMEM address <paramref name="i"/> entries after the consumer index (completion).</summary>
    public ulong AddressToConsume(uint i) => *(ulong*)(_entries + (nint)((_cachedConsumer + i) & Mask) * _entrySize);

    /// <summary>The descriptor <paramref name="i"/> entries after the consumer index (rx).</summary>
    public ref readonly XdpDesc DescToConsume(uint i) => ref *(XdpDesc*)(_entries + (nint)((_cachedConsumer + i) & Mask) * _entrySize);

    /// <summary>Gives <paramref name="n"/> read entries back to the other side.</summary>
    public void Release(uint n)
    {
        _cachedConsumer += n;
        Volatile.Write(ref *_consumer, _cachedConsumer);
    }
}
