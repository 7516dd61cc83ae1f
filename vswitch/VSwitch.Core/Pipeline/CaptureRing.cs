using System.Diagnostics;

namespace VSwitch.Core.Pipeline;

/// <summary>
/// The bounded ring between the datapath threads that capture frames and the one reader that streams them
/// (Vyukov's bounded MPMC queue, used with a single consumer). Every slot and its bytes are allocated when the
/// capture starts; a writer claims a slot with one compare-and-swap, copies the frame and publishes the slot's
/// sequence number. A full ring refuses the frame at once (the caller counts it): a datapath thread never waits
/// for a slow reader.
/// </summary>
public sealed class CaptureRing
{
    private readonly long[] _sequence;
    private readonly byte[] _bytes;
    private readonly Record[] _records;
    private readonly int _mask;
    private long _enqueue;
    private long _dequeue; // one reader: a plain field

    /// <summary>What a slot holds besides the frame's bytes.</summary>
    public struct Record
    {
        public long TimestampNs;
        public int CapturedLength, OriginalLength, Port, Stage;
        public CaptureDirection Direction;
        public Flow.DropReason Drop;
    }

    /// <param name="slots">Rounded up to a power of two.</param>
    /// <param name="slotBytes">The most a slot keeps of a frame (the snap length, at most).</param>
    public CaptureRing(int slots, int slotBytes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(slots, 2);
        ArgumentOutOfRangeException.ThrowIfLessThan(slotBytes, 1);
        int n = (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)slots);
        _mask = n - 1;
        SlotBytes = slotBytes;
        _sequence = new long[n];
        for (int i = 0; i < n; i++) _sequence[i] = i;
        _records = new Record[n];
        _bytes = GC.AllocateUninitializedArray<byte>(checked(n * slotBytes));
    }

    public int Slots => _mask + 1;
    public int SlotBytes { get; }

    /// <summary>Copies a frame (cut to the slot's size) into a free slot; false when the ring is full.</summary>
    public bool TryWrite(ReadOnlySpan<byte> frame, in Record meta)
    {
        long pos = Volatile.Read(ref _enqueue);
        int idx;
        while (true)
        {
            idx = (int)(pos & _mask);
            long diff = Volatile.Read(ref _sequence[idx]) - pos;
            if (diff == 0)
            {
                if (Interlocked.CompareExchange(ref _enqueue, pos + 1, pos) == pos) break;
                pos = Volatile.Read(ref _enqueue);
            }
            else if (diff < 0) return false; // the reader has not freed this slot yet: full
            else pos = Volatile.Read(ref _enqueue);
        }
        int len = Math.Min(frame.Length, SlotBytes);
        frame[..len].CopyTo(_bytes.AsSpan(idx * SlotBytes, len));
        ref var r = ref _records[idx];
        r = meta;
        r.CapturedLength = len;
        r.OriginalLength = frame.Length;
        Volatile.Write(ref _sequence[idx], pos + 1);
        return true;
    }

    /// <summary>The oldest published frame, if any; hand it back with <see cref="Release"/> once used (reader only).</summary>
    public bool TryPeek(out Record meta, out ReadOnlySpan<byte> frame)
    {
        long pos = _dequeue;
        int idx = (int)(pos & _mask);
        if (Volatile.Read(ref _sequence[idx]) != pos + 1)
        {
            meta = default;
            frame = default;
            return false;
        }
        meta = _records[idx];
        frame = _bytes.AsSpan(idx * SlotBytes, meta.CapturedLength);
        return true;
    }

    /// <summary>Frees the slot <see cref="TryPeek"/> returned (reader only).</summary>
    public void Release()
    {
        long pos = _dequeue;
        int idx = (int)(pos & _mask);
        Debug.Assert(Volatile.Read(ref _sequence[idx]) == pos + 1);
        Volatile.Write(ref _sequence[idx], pos + _mask + 1);
        _dequeue = pos + 1;
    }

    /// <summary>Frames claimed by writers and not yet released by the reader (some may still be being copied).</summary>
    public long Pending => Volatile.Read(ref _enqueue) - _dequeue;

    /// <summary>Whether a published frame waits (reader only).</summary>
    public bool IsEmpty => Volatile.Read(ref _sequence[(int)(_dequeue & _mask)]) != _dequeue + 1;
}
