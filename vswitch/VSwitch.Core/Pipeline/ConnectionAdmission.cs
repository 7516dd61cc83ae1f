using VSwitch.Core.Flow;
using VSwitch.Core.Topology;

namespace VSwitch.Core.Pipeline;

/// <summary>
/// Network policy's verdict on a new connection (ct_state +new), asked by the slow path once per
/// flow. Implemented by the policy engine; null on the datapath when no policy exists.
/// </summary>
public interface IConnectionAdmission
{
    /// <summary>Whether the connection may open; writes the deciding policy to the trace; counts only with <paramref name="count"/> (not for synthetic traces).</summary>
    bool Allows(in FlowKey key, SwitchTopology topo, bool count, PacketTrace? trace);
}
