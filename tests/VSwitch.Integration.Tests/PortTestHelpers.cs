using System.Diagnostics;
using System.Net;
using VSwitch.Core.Buffers;
using VSwitch.Core.Ports;
using VSwitch.Core.Ports.Linux;

namespace VSwitch.Integration.Tests;

public static class PortTestHelpers
{
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
