using VSwitch.Core.Buffers;
using VSwitch.Core.Flow;
using VSwitch.Core.Pipeline;
using VSwitch.Overlay.Wire;

namespace VSwitch.Fuzz.Targets;

/// <summary>
/// A UDP datagram on the VXLAN port: <see cref="VxlanCodec.Decapsulate"/> on a pooled packet as
/// VxlanReceiver does, then the inner frame through the pipeline from the tunnel port (VNI and
/// remote VTEP checks, the bridge) as a dry-run trace. Documented: a bad header is a drop reason
/// (TruncatedTunnelHeader, BadTunnelHeader); nothing throws.
/// </summary>
public sealed class VxlanTarget : FuzzTarget
{
    // One pool for the process: the receiver reads into pooled slots, never into fresh arrays. Made
    // on the first input, not here: instrumented code must not run before SharpFuzz has set up AFL's
    // shared memory (the constructor runs when the target list is built).
    private PacketPool? _pool;

    public override string Name => "vxlan";
    public override string Description => "VXLAN datagrams: VxlanCodec.Decapsulate, then the inner frame from the tunnel port";
    public override IReadOnlyList<Instrumented> Instrument { get; } = [new("VSwitch.Overlay.dll"), new("VSwitch.Core.dll")];

    public override void Execute(byte[] input)
    {
        var sw = FuzzSwitch.Shared;
        _pool ??= new PacketPool(4);
        var p = _pool.TryRent() ?? throw new InvalidOperationException("the packet pool leaked a slot");
        try
        {
            // A datagram longer than a slot is cut by recvmmsg (MSG_TRUNC) and dropped before decapsulation.
            if (input.Length > p.ReceiveCapacity) return;
            p.CopyFrom(input);
            p.InPort = sw.Tunnel;
            p.TunnelRemote = FuzzSwitch.Vtep;
            if (VxlanCodec.Decapsulate(p) != DropReason.None) return;
            Tracer.Trace(sw.Dp, p.Data, sw.Tunnel, nowMs: 1000, p.TunnelId, p.TunnelRemote);
        }
        finally { p.Release(); }
    }
}
