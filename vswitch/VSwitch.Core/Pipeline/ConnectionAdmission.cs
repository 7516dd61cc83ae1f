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

    /// <summary>
    /// Whether a rule explicitly lets this source reach this destination (for an answer, ct_state
    /// +rpl, the destination reach the source): what opens a path between isolated networks.
    /// </summary>
    bool OpensPath(in FlowKey key);
}
