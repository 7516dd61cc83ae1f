using System.Diagnostics;
using System.Net;
using VSwitch.Core.Buffers;
using VSwitch.Core.Ports;
using VSwitch.Core.Ports.Linux;

namespace VSwitch.Integration.Tests;

/// <summary>Stops a <see cref="PortTestHelpers.Forward"/> loop and carries back what it measured.</summary>
public sealed class ForwardingLoop { public volatile bool Stop; public long AllocatedBytes = -1; public long Frames; }

public static class PortTestHelpers
{
    /// <summary>
    /// A two-port forwarding loop (a → b, b → a) on the calling thread until <see cref="ForwardingLoop.Stop"/>;
    /// counts the bytes it allocated once <paramref name="steadyAfter"/> frames went through (the first calls JIT and initialise).
    /// Compiled optimised at once: an on-stack-replacement compile of this loop, done on this thread partway
    /// through, allocates and would be counted against the ports (see tests/VSwitch.Core.Tests/SteadyStateAllocations.cs).
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    public static void Forward(IPort a, IPort b, ForwardingLoop loop, int steadyAfter)
    {
        var pool = new PacketPool(1024);
        var batch = new PacketBatch(PacketBatch.MaxSize);
        using var ep = new EpollSet(4);
        ep.Add(a.PollFd, 0);
        ep.Add(b.PollFd, 1);
        long allocated = -1, frames = 0;
        while (!loop.Stop)
        {
            ep.Wait(20);
            for (int round = 0; round < 16; round++)
            {
                int moved = 0, n;
                if ((n = a.Receive(batch, pool)) > 0) { moved += n; b.Transmit(batch); }
                if ((n = b.Receive(batch, pool)) > 0) { moved += n; a.Transmit(batch); }
                frames += moved;
                if (allocated < 0 && frames > steadyAfter) allocated = GC.GetAllocatedBytesForCurrentThread();
                if (moved == 0) break;
            }
        }
        loop.AllocatedBytes = allocated < 0 ? -1 : GC.GetAllocatedBytesForCurrentThread() - allocated;
        loop.Frames = frames;
        batch.ReleaseAll();
    }

    /// <summary>
    /// Receives from <paramref name="port"/> (sleeping in epoll) until an ARP request for
    /// <paramref name="target"/> arrives; returns the requester's MAC and IP.
    /// </summary>
    public static (ulong Mac, uint Ip) WaitForArpRequest(IPort port, PacketPool pool, IPAddress target, TimeSpan timeout)
    {
        using var ep = new EpollSet(4);
        ep.Add(port.PollFd, 1);
        var batch = new PacketBatch();
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < timeout)
        {
            ep.Wait(50);
            port.Receive(batch, pool);
            try
            {
                foreach (var p in batch.AsSpan())
                    if (Arp.IsRequest(p.Data, target, out var mac, out var ip))
                        return (mac, ip);
            }
            finally { batch.ReleaseAll(); }
        }
        throw new TimeoutException($"no ARP request for {target} arrived on {port.Name} within {timeout.TotalSeconds} s");
    }

    /// <summary>Sends one ARP reply "ip is at mac" through the port; returns how many frames were sent.</summary>
    public static int SendArpReply(IPort port, PacketPool pool, ulong mac, IPAddress ip, ulong toMac, uint toIp)
    {
        var batch = new PacketBatch();
        var p = pool.TryRent() ?? throw new InvalidOperationException("pool empty");
        int n = Arp.WriteReply(p.ReceiveBuffer(), mac, ip, toMac, toIp);
        p.SetLength(n);
        batch.Add(p);
        return port.Transmit(batch);
    }

    public static bool NeighbourHasMac(TestNetns ns, string ip, ulong mac)
    {
        var r = Proc.Run("ip", "-n", ns.Name, "neigh", "show", ip);
        return r.StdOut.Contains("lladdr " + VSwitch.Core.Wire.MacAddress.Format(mac), StringComparison.Ordinal);
    }
}
