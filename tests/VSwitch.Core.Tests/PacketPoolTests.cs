using VSwitch.Core.Buffers;

namespace VSwitch.Core.Tests;

public class PacketPoolTests
{
    [Fact]
    public void Rent_and_return_reuse_slots_and_double_free_throws()
    {
        var pool = new PacketPool(2);
        var a = pool.TryRent()!;
        var b = pool.TryRent()!;
        Assert.Null(pool.TryRent());
        a.Release();
        Assert.Throws<InvalidOperationException>(() => a.Release());
        Assert.Same(a, pool.TryRent());
        b.Release();
        Assert.Equal(1, pool.Available);
    }

    [Fact]
    public void Headroom_allows_prepending_without_copying_the_frame()
    {
        var pool = new PacketPool(1, headroom: 128);
        var p = pool.TryRent()!;
        var buf = p.ReceiveBuffer();
        buf[0] = 0xAB;
        p.SetLength(60);
        Assert.Equal(128, p.Headroom);
        var front = p.Prepend(50);
        Assert.Equal(50, front.Length);
        Assert.Equal(110, p.Length);
        Assert.Equal(0xAB, p.Data[50]);
        p.TrimFront(50);
        Assert.Equal(0xAB, p.Data[0]);
        Assert.Throws<InvalidOperationException>(() => p.Prepend(129));
    }

    [Fact]
    public void Returning_to_another_pool_throws()
    {
        var p1 = new PacketPool(1);
        var p2 = new PacketPool(1);
        var p = p1.TryRent()!;
        Assert.Throws<InvalidOperationException>(() => p2.Return(p));
    }

    [Fact]
    public void Jumbo_frames_are_configurable()
    {
        var pool = new PacketPool(4, frameSize: 9216);
        var p = pool.TryRent()!;
        Assert.True(p.ReceiveCapacity >= 9216);
        Assert.Equal(0, pool.SlotSize % 64);
    }

    [Fact]
    public void Batch_holds_up_to_64()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new PacketBatch(65));
        var pool = new PacketPool(70);
        var batch = new PacketBatch();
        for (int i = 0; i < 64; i++) batch.Add(pool.TryRent()!);
        Assert.True(batch.IsFull);
        Assert.Throws<InvalidOperationException>(() => batch.Add(pool.TryRent()!));
        batch.ReleaseAll();
        Assert.Equal(69, pool.Available);
    }
}
