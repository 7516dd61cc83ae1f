using System.Runtime.InteropServices;
using VSwitch.Core.Ports.AfXdp;
using Xunit;

namespace VSwitch.Core.Tests;

/// <summary>
/// The AF_XDP ring arithmetic over native memory laid out as the kernel maps it (producer, consumer,
/// flags, entries), with the test playing the kernel's side: free-running 32-bit indices across their
/// wrap, cached indices refreshed only when short, never more than the ring holds.
/// </summary>
public sealed unsafe class XskRingTests : IDisposable
{
    private const uint Size = 8;
    private static readonly XdpRingOffset Offsets = new() { Producer = 0, Consumer = 64, Flags = 128, Desc = 192 };
    private readonly byte* _map = (byte*)NativeMemory.AllocZeroed(192 + Size * 16);

    private ref uint Producer => ref *(uint*)_map;
    private ref uint Consumer => ref *(uint*)(_map + 64);
    private ref uint Flags => ref *(uint*)(_map + 128);
    private ulong KernelAddress(uint index) => *(ulong*)(_map + 192 + (index & (Size - 1)) * 8);

    public void Dispose() => NativeMemory.Free(_map);

    [Fact]
    public void A_producer_ring_wraps_its_32_bit_indices_and_never_overfills()
    {
        Producer = Consumer = uint.MaxValue - 2; // three entries before the wrap
        var fill = new XskRing(_map, Offsets, Size, sizeof(ulong));
        ulong next = 100, kernelNext = 100;
        for (int round = 0; round < 5; round++)
        {
            uint n = fill.Free(Size + 5);
            Assert.Equal(Size - (Producer - Consumer), n);
            for (uint i = 0; i < n; i++) fill.AddressToProduce(i) = next++;
            fill.Submit(n);
            Assert.Equal(0u, fill.Free(1)); // full: the kernel has consumed nothing yet
            // The kernel takes five, in order, across the wrap.
            for (int k = 0; k < 5; k++) Assert.Equal(kernelNext++, KernelAddress(Consumer++));
        }
        Assert.True(Producer < 100, "the producer index wrapped");
        Assert.Equal(5u, fill.Free(Size));
    }

    /// <summary>
    /// A hitless restart: the successor maps the ring while its predecessor still produces into it; after Resync it
    /// goes on from the predecessor's last index, neither overwriting what the predecessor queued nor skipping a slot.
    /// </summary>
    [Fact]
    public void A_ring_mapped_by_a_successor_goes_on_from_the_predecessors_index_after_resync()
    {
        Producer = Consumer = uint.MaxValue - 3;
        var predecessor = new XskRing(_map, Offsets, Size, sizeof(ulong));
        var successor = new XskRing(_map, Offsets, Size, sizeof(ulong)); // mapped at once (its Ready), indices as then
        for (uint i = 0; i < 5; i++) predecessor.AddressToProduce(i) = 10 + i;
        predecessor.Submit(5); // across the wrap, after the successor mapped the ring
        Consumer += 2;         // and the kernel took two
        successor.Resync();
        Assert.Equal(Producer, successor.ProducerIndex);
        Assert.Equal(Size - 3, successor.Free(Size));
        successor.AddressToProduce(0) = 99;
        successor.Submit(1);
        for (ulong want = 12; want < 15; want++) Assert.Equal(want, KernelAddress(Consumer++));
        Assert.Equal(99ul, KernelAddress(Consumer++));
        Assert.Equal(Producer, Consumer);
    }

    [Fact]
    public void A_consumer_ring_sees_what_the_kernel_produced_across_the_wrap_and_releases_in_order()
    {
        Producer = Consumer = uint.MaxValue - 1;
        var rx = new XskRing(_map, Offsets, Size, 16);
        Assert.Equal(0u, rx.Available(64));
        uint kernelProducer = Producer;
        void KernelProduces(int count, ulong firstAddr)
        {
            for (int i = 0; i < count; i++)
            {
                var d = (XdpDesc*)(_map + 192 + ((kernelProducer + (uint)i) & (Size - 1)) * 16);
                d->Addr = firstAddr + (ulong)i * 2048;
                d->Len = 60 + (uint)i;
            }
            kernelProducer += (uint)count;
            Volatile.Write(ref Producer, kernelProducer);
        }
        KernelProduces(5, 0);
        Assert.Equal(3u, rx.Available(3));
        Assert.Equal(5u, rx.Available(64));
        for (uint i = 0; i < 5; i++)
        {
            Assert.Equal(i * 2048, rx.DescToConsume(i).Addr);
            Assert.Equal(60 + i, rx.DescToConsume(i).Len);
        }
        rx.Release(2);
        Assert.Equal(0u, Consumer); // wrapped
        Assert.Equal(3u, rx.Available(64));
        KernelProduces(4, 1 << 20);
        Assert.Equal(7u, rx.Available(64));
        Assert.Equal(2u * 2048, rx.DescToConsume(0).Addr);
        Assert.Equal(1ul << 20, rx.DescToConsume(3).Addr);
        rx.Release(7);
        Assert.Equal(kernelProducer, Consumer);
        Assert.Equal(0u, rx.Available(64));
    }

    [Fact]
    public void Need_wakeup_is_read_from_the_flags_word()
    {
        var tx = new XskRing(_map, Offsets, Size, 16);
        Assert.False(tx.NeedsWakeup);
        Flags = Xsk.XDP_RING_NEED_WAKEUP;
        Assert.True(tx.NeedsWakeup);
    }

    [Fact]
    public void A_ring_size_must_be_a_power_of_two()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new XskRing(_map, Offsets, 6, 16));
    }

    [Fact]
    public void The_redirect_program_loads_the_queue_index_and_relocates_the_map_fd()
    {
        ulong[] p = XdpProgram.Instructions(mapFd: 7);
        Assert.Equal(6, p.Length);
        Assert.Equal(0x0000_0000_0010_1261ul, p[0]);  // r2 = *(u32 *)(r1 + 16)
        Assert.Equal(0x0000_0007_0000_1118ul, p[1]);  // r1 = map fd 7 (BPF_PSEUDO_MAP_FD in src)
        Assert.Equal(0ul, p[2]);
        Assert.Equal(0x0000_0002_0000_03b7ul, p[3]);  // r3 = XDP_PASS
        Assert.Equal(0x0000_0033_0000_0085ul, p[4]);  // call 51 (bpf_redirect_map)
        Assert.Equal(0x95ul, p[5]);                   // exit
    }

    [Fact]
    public void Modes_are_tried_best_first_and_contradictions_are_named()
    {
        Assert.Equal(["native zero-copy", "native copy", "generic copy"], new AfXdpOptions { Interface = "x" }.Candidates().Select(m => m.ToString()));
        Assert.Equal(["native copy", "generic copy"], new AfXdpOptions { Interface = "x", Copy = XskCopyMode.Copy }.Candidates().Select(m => m.ToString()));
        Assert.Equal(["generic copy"], new AfXdpOptions { Interface = "x", Attach = XdpAttachMode.Generic }.Candidates().Select(m => m.ToString()));
        Assert.Contains("zero-copy", new AfXdpOptions { Interface = "x", Attach = XdpAttachMode.Generic, Copy = XskCopyMode.ZeroCopy }.Validate());
        Assert.Contains("1000", new AfXdpOptions { Interface = "x", RingSize = 1000 }.Validate());
        Assert.Null(new AfXdpOptions { Interface = "x" }.Validate());
    }
}
