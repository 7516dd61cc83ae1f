using System.Buffers.Binary;
using VSwitch.Core.Buffers;
using VSwitch.Core.Flow;
using VSwitch.Core.Pipeline;
using VSwitch.Core.Ports;
using VSwitch.Core.Tables.Conntrack;
using VSwitch.Core.Wire;

namespace VSwitch.Core.Tests;

/// <summary>The shared conntrack table and the conntrack stage: both directions, TCP states, expiry, a full table, DNAT to a backend and back.</summary>
public class ConntrackTests
{
    private static ConnTuple Tcp(uint src, ushort sport, uint dst, ushort dport) =>
        new() { Src = src, Dst = dst, SrcPort = sport, DstPort = dport, Proto = IpProtocols.Tcp, Family = 4 };

    [Fact]
    public void A_masquerade_port_held_by_a_connection_in_time_wait_is_taken_again_by_a_syn_only()
    {
        var t = new ConntrackTable(16);
        uint host = 0x64400101, server = 0x64400102;
        // The one port of the range is held by an earlier connection (orig from a container, reply to host:61000).
        var old = Tcp(0x0A000002, 40000, server, 80);
        var oldReply = Tcp(server, 80, host, 61000);
        Assert.Equal(ConntrackTable.CommitResult.Committed, t.Commit(old, oldReply, 0, 100_000, ConnFlags.SrcNat, TcpConnState.Established, 0, out int i));
        var next = Tcp(0x0A000002, 40001, server, 80);
        Assert.Equal(0, t.FreeSourcePort(next, next.Reverse(), host, 61000, 61000, 10, reuseClosing: true)); // established: not taken
        t.Entry(i).Tcp = TcpConnState.TimeWait;
        Assert.Equal(0, t.FreeSourcePort(next, next.Reverse(), host, 61000, 61000, 10));                    // not a SYN
        Assert.Equal(61000, t.FreeSourcePort(next, next.Reverse(), host, 61000, 61000, 10, reuseClosing: true));
        Assert.Equal(ConntrackTable.CommitResult.Exists, t.Commit(next, oldReply, 10, 100_000, ConnFlags.SrcNat, TcpConnState.SynSent, 0, out _));
        Assert.Equal(ConntrackTable.CommitResult.Committed, t.Commit(next, oldReply, 10, 100_000, ConnFlags.SrcNat, TcpConnState.SynSent, 0, out int j, reuseClosing: true));
        Assert.False(t.Lookup(old, 11, out _, out _));   // the old connection is gone, the new one answers on its port
        Assert.True(t.Lookup(oldReply, 11, out int k, out bool reply) && k == j && reply);
    }

    [Fact]
    public void An_entry_is_found_from_both_directions_and_expires_on_its_timeout()
    {
        var t = new ConntrackTable(16);
        var o = Tcp(0x0A000001, 40000, 0x0A000002, 80);
        Assert.Equal(ConntrackTable.CommitResult.Committed, t.Commit(o, o.Reverse(), 1000, 5000, ConnFlags.None, TcpConnState.SynSent, 0, out int i));
        Assert.True(t.Lookup(o, 1001, out int a, out bool ra) && a == i && !ra);
        Assert.True(t.Lookup(o.Reverse(), 1001, out int b, out bool rb) && b == i && rb);
        Assert.Equal(ConntrackTable.CommitResult.Exists, t.Commit(o, o.Reverse(), 1002, 5000, ConnFlags.None, TcpConnState.SynSent, 0, out _));
        Assert.False(t.Lookup(o, 6001, out _, out _));   // expired
        Assert.Equal(1, t.Sweep(6001, 100));
        Assert.Equal(0, t.Count);
    }

    [Fact]
    public void A_full_table_refuses_new_connections_and_keeps_the_old_and_reuses_slots_after_the_grace_time()
    {
        var t = new ConntrackTable(2);
        var c1 = Tcp(1, 1, 2, 80); var c2 = Tcp(1, 2, 2, 80); var c3 = Tcp(1, 3, 2, 80);
        Assert.Equal(ConntrackTable.CommitResult.Committed, t.Commit(c1, c1.Reverse(), 0, 10_000, 0, TcpConnState.SynSent, 0, out _));
        Assert.Equal(ConntrackTable.CommitResult.Committed, t.Commit(c2, c2.Reverse(), 0, 100, 0, TcpConnState.SynSent, 0, out _));
        Assert.Equal(ConntrackTable.CommitResult.Full, t.Commit(c3, c3.Reverse(), 50, 100, 0, TcpConnState.SynSent, 0, out _));
        Assert.Equal(1, t.Full);
        Assert.True(t.Lookup(c1, 50, out _, out _));
        // c2 expires at 100: swept, but its slot waits out the grace time before it is used again.
        Assert.Equal(ConntrackTable.CommitResult.Full, t.Commit(c3, c3.Reverse(), 200, 100, 0, TcpConnState.SynSent, 0, out _));
        Assert.Equal(ConntrackTable.CommitResult.Committed, t.Commit(c3, c3.Reverse(), 200 + ConntrackTable.ReuseGraceMs, 100, 0, TcpConnState.SynSent, 0, out _));
        Assert.True(t.Lookup(c1, 1300, out _, out _));
    }

    [Fact]
    public void Flush_forgets_every_connection_at_once()
    {
        var t = new ConntrackTable(16);
        var o = Tcp(1, 1, 2, 2);
        t.Commit(o, o.Reverse(), 0, 10_000, 0, TcpConnState.SynSent, 0, out _);
        t.Flush();
        Assert.False(t.Lookup(o, 1, out _, out _));
        Assert.Empty(t.Snapshot(1));
        Assert.Equal(ConntrackTable.CommitResult.Committed, t.Commit(o, o.Reverse(), 1, 10_000, 0, TcpConnState.SynSent, 0, out _));
    }

    [Fact]
    public void Exported_connections_are_imported_with_their_state_nat_counters_and_expiry()
    {
        var a = new ConntrackTable(16);
        var o = Tcp(1, 1000, 9, 80);
        var reply = Tcp(7, 8080, 1, 1000);
        a.Commit(o, reply, 100, 50_000, ConnFlags.DstNat | ConnFlags.SeenReply, TcpConnState.Established, 42, out int i);
        a.Entry(i).PacketsOrig = 5;
        var expired = Tcp(2, 2, 9, 80);
        a.Commit(expired, expired.Reverse(), 100, 10, ConnFlags.None, TcpConnState.SynSent, 0, out _);
        var bytes = a.Export(1000, 100, out int n);
        Assert.Equal(1, n);
        var b = new ConntrackTable(16);
        Assert.Equal(1, b.Import(bytes, 1000));
        Assert.True(b.Lookup(reply, 1000, out int j, out bool isReply) && isReply);
        var e = b.Entry(j);
        Assert.Equal((TcpConnState.Established, 42, 5L, 50_100L), (e.Tcp, e.Label, e.PacketsOrig, e.ExpiresMs));
        Assert.True(e.IsNat);
    }

    [Fact]
    public void Tcp_states_follow_the_handshake_and_the_close_with_netfilters_timeouts()
    {
        var t = new ConntrackTable(4);
        var o = Tcp(1, 1, 2, 2);
        t.Commit(o, o.Reverse(), 0, 120_000, 0, TcpConnState.SynSent, 0, out int i);
        Assert.True(t.Update(i, true, IpProtocols.Tcp, TcpTracker.Syn | TcpTracker.Ack, 60, 1));
        Assert.Equal(TcpConnState.SynRecv, t.Entry(i).Tcp);
        Assert.True(t.Update(i, false, IpProtocols.Tcp, TcpTracker.Ack, 60, 2));
        Assert.Equal(TcpConnState.Established, t.Entry(i).Tcp);
        Assert.Equal(2 + 432_000_000L, t.Entry(i).ExpiresMs);
        Assert.True(t.Update(i, false, IpProtocols.Tcp, TcpTracker.Fin | TcpTracker.Ack, 60, 3));
        Assert.True(t.Update(i, true, IpProtocols.Tcp, TcpTracker.Fin | TcpTracker.Ack, 60, 4));
        Assert.Equal(TcpConnState.LastAck, t.Entry(i).Tcp);
        Assert.True(t.Update(i, false, IpProtocols.Tcp, TcpTracker.Ack, 60, 5));
        Assert.Equal(TcpConnState.TimeWait, t.Entry(i).Tcp);
        Assert.Equal(5 + 120_000L, t.Entry(i).ExpiresMs);
        Assert.False(t.Update(i, false, IpProtocols.Tcp, TcpTracker.Syn | TcpTracker.Fin, 60, 6)); // bogus flags
    }

    [Fact]
    public void A_million_connections_fit_in_under_200_MB()
    {
        var t = new ConntrackTable(1_000_000);
        for (int k = 0; k < 1_000_000; k++)
        {
            var o = Tcp(0x0A000000u + (uint)(k >> 16), (ushort)k, 0x0A600000, 80);
            Assert.Equal(ConntrackTable.CommitResult.Committed, t.Commit(o, o.Reverse(), 0, 1_000_000, 0, TcpConnState.SynSent, 0, out _));
        }
        // The table's own arrays (measured, not the process's heap, which other tests share).
        Assert.Equal(1_000_000, t.Count);
        Assert.True(t.MemoryBytes < 200L << 20, $"1 M connections take {t.MemoryBytes >> 20} MB");
        GC.KeepAlive(t);
    }

    /// <summary>Sends every connection to one backend: the picker a service with one backend would be.</summary>
    private sealed class OneBackend(uint address, ushort port) : IBackendPicker
    {
        public int Picks;
        public bool TryPick(in ConnTuple orig, out UInt128 a, out ushort p, out int label, out string? note)
        {
            Picks++;
            a = address; p = port; label = 7; note = "only backend";
            return true;
        }
    }

    private const uint Gw1 = 0x0A010001, Client = 0x0A010002, Gw2 = 0x0A020001, Backend = 0x0A020002, Vip = 0x0A60000A;
    private static readonly ulong MacA = TestFrames.Mac(0xA), MacB = TestFrames.Mac(0xB);

    private sealed class Rig
    {
        public readonly Datapath Dp = new();
        public readonly PacketPool Pool = new(1024);
        public readonly DatapathContext Ctx;
        public readonly MemoryPort A = new("a"), B = new("b");
        public readonly int IdA, IdB;
        public readonly ulong R1, R2;
        public readonly OneBackend Picker = new(Backend, 8080);
        public long Now = 1000;

        public Rig(int capacity = 1024)
        {
            Dp.ConntrackCapacity = capacity;
            R1 = Dp.AddNetwork("n1", gateway: Gw1, prefixLength: 24).Router!.Mac;
            R2 = Dp.AddNetwork("n2", gateway: Gw2, prefixLength: 24).Router!.Mac;
            Dp.ConnectNetworks("n1", "n2");
            IdA = Dp.AddPort(A, "n1").Id;
            IdB = Dp.AddPort(B, "n2").Id;
            Dp.Neighbors.AddStatic(1, Client, MacA);
            Dp.Neighbors.AddStatic(2, Backend, MacB);
            Dp.MacTable.AddStatic(1, 0, MacA, IdA);
            Dp.MacTable.AddStatic(2, 0, MacB, IdB);
            Dp.SetConntrackPart("test", new ConntrackPart(true,
                [new NatFrontend { Name = "web", Proto = IpProtocols.Tcp, Address = Vip, Port = 80, Picker = Picker }]));
            Ctx = Dp.CreateContext(Pool);
        }

        public void Send(MemoryPort port, byte[] frame)
        {
            port.Inject(frame);
            var batch = new PacketBatch();
            port.Receive(batch, Pool);
            Datapath.CountReceive(batch, Ctx, port == A ? IdA : IdB);
            Dp.ProcessBatch(batch, Ctx, Now);
        }

        public List<byte[]> Take(MemoryPort port)
        {
            var l = port.Sent.ToList();
            port.Sent.Clear();
            return l;
        }

        public byte[] ClientToVip(ushort sport, ushort flags) => FrameBuilder.FromKey(new FlowKey
        {
            DlSrc = MacA, DlDst = R1, DlType = EtherTypes.IPv4, NwSrc = Client, NwDst = Vip, NwTtl = 64,
            NwProto = IpProtocols.Tcp, TpSrc = sport, TpDst = 80, TcpFlags = flags,
        });

        public byte[] BackendToClient(ushort dport, ushort flags) => FrameBuilder.FromKey(new FlowKey
        {
            DlSrc = MacB, DlDst = R2, DlType = EtherTypes.IPv4, NwSrc = Backend, NwDst = Client, NwTtl = 64,
            NwProto = IpProtocols.Tcp, TpSrc = 8080, TpDst = dport, TcpFlags = flags,
        });
    }

    private static (uint Src, uint Dst, ushort Sport, ushort Dport) Read(byte[] f) =>
        (BinaryPrimitives.ReadUInt32BigEndian(f.AsSpan(26)), BinaryPrimitives.ReadUInt32BigEndian(f.AsSpan(30)),
         BinaryPrimitives.ReadUInt16BigEndian(f.AsSpan(34)), BinaryPrimitives.ReadUInt16BigEndian(f.AsSpan(36)));

    private static void AssertChecksums(byte[] f)
    {
        Assert.True(Checksum.VerifyIPv4Header(f.AsSpan(14, 20)), "IPv4 header checksum");
        int total = BinaryPrimitives.ReadUInt16BigEndian(f.AsSpan(16));
        var seg = f.AsSpan(34, total - 20);
        ushort pseudo = Checksum.PseudoHeaderIPv4(BinaryPrimitives.ReadUInt32BigEndian(f.AsSpan(26)), BinaryPrimitives.ReadUInt32BigEndian(f.AsSpan(30)), IpProtocols.Tcp, seg.Length);
        Assert.True(Checksum.Verify(seg, pseudo), "TCP checksum");
    }

    [Fact]
    public void A_connection_to_a_frontend_is_translated_to_its_backend_and_the_answer_back_to_the_frontend()
    {
        var r = new Rig();
        r.Send(r.A, r.ClientToVip(40000, TcpTracker.Syn));
        var atB = Assert.Single(r.Take(r.B));
        Assert.Equal((Client, Backend, (ushort)40000, (ushort)8080), Read(atB));
        AssertChecksums(atB);
        Assert.Equal(1, r.Dp.Conntrack.Count);

        r.Send(r.B, r.BackendToClient(40000, TcpTracker.Syn | TcpTracker.Ack));
        var atA = Assert.Single(r.Take(r.A));
        Assert.Equal((Vip, Client, (ushort)80, (ushort)40000), Read(atA));
        AssertChecksums(atA);

        r.Send(r.A, r.ClientToVip(40000, TcpTracker.Ack));
        Assert.Equal((Client, Backend, (ushort)40000, (ushort)8080), Read(Assert.Single(r.Take(r.B))));
        var e = Assert.Single(r.Dp.Conntrack.Snapshot(r.Now));
        Assert.Equal(TcpConnState.Established, e.Tcp);
        Assert.Equal(7, e.Label);
        Assert.Equal(2, e.PacketsOrig);
        Assert.Equal(1, e.PacketsReply);
        Assert.Equal(1, r.Picker.Picks); // the backend is chosen once, then the entry decides
    }

    [Fact]
    public void A_stray_reset_and_an_answer_without_a_connection_are_invalid_and_dropped()
    {
        var r = new Rig();
        r.Send(r.B, r.BackendToClient(41000, TcpTracker.Rst));
        r.Send(r.B, r.BackendToClient(41001, TcpTracker.Syn | TcpTracker.Ack));
        Assert.Empty(r.Take(r.A));
        Assert.Equal(2, r.Dp.ReadDropCounters()[(int)DropReason.CtInvalid]);
        Assert.Equal(0, r.Dp.Conntrack.Count);
    }

    [Fact]
    public void When_the_table_is_full_new_connections_are_dropped_and_counted_and_existing_ones_go_on()
    {
        var r = new Rig(capacity: 2);
        r.Send(r.A, r.ClientToVip(1, TcpTracker.Syn));
        r.Send(r.A, r.ClientToVip(2, TcpTracker.Syn));
        r.Take(r.B);
        r.Send(r.A, r.ClientToVip(3, TcpTracker.Syn));
        Assert.Empty(r.Take(r.B));
        Assert.Equal(1, r.Dp.ReadDropCounters()[(int)DropReason.ConntrackFull]);
        r.Send(r.B, r.BackendToClient(1, TcpTracker.Syn | TcpTracker.Ack));
        Assert.Single(r.Take(r.A));
    }

    [Fact]
    public void Without_services_policy_or_nat_nothing_is_tracked()
    {
        var dp = new Datapath();
        Assert.False(dp.ConntrackConfig.Track);
        dp.SetConntrackPart("x", new ConntrackPart(true, []));
        Assert.True(dp.ConntrackConfig.Track);
        dp.SetConntrackPart("x", ConntrackPart.None);
        Assert.False(dp.ConntrackConfig.Track);
    }

    [Fact]
    public void Tracked_established_traffic_allocates_nothing()
    {
        var r = new Rig();
        r.A.KeepSent = false;
        r.B.KeepSent = false;
        // 16 connections, opened, then their established packets replayed both ways.
        for (ushort c = 0; c < 16; c++)
        {
            r.Send(r.A, r.ClientToVip((ushort)(50000 + c), TcpTracker.Syn));
            r.Send(r.B, r.BackendToClient((ushort)(50000 + c), TcpTracker.Syn | TcpTracker.Ack));
        }
        var toB = new byte[32][];
        var toA = new byte[32][];
        for (int j = 0; j < 32; j++)
        {
            toB[j] = r.ClientToVip((ushort)(50000 + j % 16), TcpTracker.Ack);
            toA[j] = r.BackendToClient((ushort)(50000 + j % 16), TcpTracker.Ack);
        }
        r.A.Replay(toB);
        r.B.Replay(toA);
        var batch = new PacketBatch(32);
        void Run(int rounds)
        {
            for (int k = 0; k < rounds; k++)
            {
                r.Now++;
                r.A.Receive(batch, r.Pool);
                Datapath.CountReceive(batch, r.Ctx, r.IdA);
                r.Dp.ProcessBatch(batch, r.Ctx, r.Now);
                r.B.Receive(batch, r.Pool);
                Datapath.CountReceive(batch, r.Ctx, r.IdB);
                r.Dp.ProcessBatch(batch, r.Ctx, r.Now);
            }
        }
        Run(50);
        var m = SteadyStateAllocations.Measure(Run, 2000);
        SteadyStateAllocations.AssertNone(m);
        Assert.Equal(16, r.Dp.Conntrack.Count);
        Assert.True(r.B.SentCount > 1000 && r.A.SentCount > 1000);
    }

    [Fact]
    public void A_syn_reusing_the_ports_of_a_closed_frontend_connection_picks_a_backend_again()
    {
        var r = new Rig();
        r.Send(r.A, r.ClientToVip(42000, TcpTracker.Syn));
        r.Send(r.B, r.BackendToClient(42000, TcpTracker.Rst | TcpTracker.Ack)); // the backend refused it (its server died)
        r.Take(r.A);
        r.Take(r.B);
        Assert.Equal(TcpConnState.Close, Assert.Single(r.Dp.Conntrack.Snapshot(r.Now)).Tcp);
        r.Send(r.A, r.ClientToVip(42000, TcpTracker.Syn));
        Assert.Single(r.Take(r.B));
        Assert.Equal(2, r.Picker.Picks); // chosen again, not sent where the closed connection went
        Assert.Equal(TcpConnState.SynSent, Assert.Single(r.Dp.Conntrack.Snapshot(r.Now)).Tcp);
    }
}
