namespace VSwitchd.Runtime;

public sealed partial class SwitchRuntime
{
    /// <summary>
    /// Lets the router route between two routed networks, both ways (<c>vsctl network connect A B</c>);
    /// they are isolated from each other until then. Applied to the datapath (which drops every cached
    /// flow's decision), then stored.
    /// </summary>
    public void ConnectNetworks(string a, string b, bool persist = true)
    {
        lock (_gate)
        {
            var (na, nb) = RoutedPair(a, b);
            if (!Datapath.ConnectNetworks(na, nb)) throw new ConflictException($"networks '{na}' and '{nb}' are already connected");
            if (persist) Store?.SaveConnection(na, nb);
            _log.LogInformation("networks {A} and {B} connected: the router routes between them", na, nb);
        }
    }

    /// <summary>Isolates two networks again; packets of flows between them are dropped from their next one.</summary>
    public void DisconnectNetworks(string a, string b)
    {
        lock (_gate)
        {
            var (na, nb) = RoutedPair(a, b);
            if (!Datapath.DisconnectNetworks(na, nb)) throw new NotFoundException($"networks '{na}' and '{nb}' are not connected");
            Store?.DeleteConnection(na, nb);
            _log.LogInformation("networks {A} and {B} disconnected: isolated from each other", na, nb);
        }
    }

    private (string, string) RoutedPair(string a, string b)
    {
        if (string.IsNullOrWhiteSpace(b)) throw new InvalidRequestException("network: required (the network to connect to, e.g. {\"network\": \"blue\"})");
        var t = Datapath.Topology;
        var na = NetworkOrDocker(t, a) ?? throw NoNetwork(a);
        var nb = NetworkOrDocker(t, b) ?? throw NoNetwork(b);
        if (na == nb) throw new InvalidRequestException($"network '{a}' cannot be connected to itself (a network always reaches its own hosts)");
        foreach (var n in new[] { na, nb })
            if (n.Router is null)
                throw new InvalidRequestException($"network '{n.Name}' has no subnet: it is not routed, so there is nothing to connect (networks meet only through the router)");
        return (na.Name, nb.Name);
    }

    /// <summary>The names of the networks connected to <paramref name="network"/>.</summary>
    private string[] ConnectedTo(VSwitch.Core.Topology.SwitchTopology t, VSwitch.Core.Topology.Network network) =>
        t.Connections.Of(network.Id).Select(id => t.Network(id)?.Name ?? $"#{id}").Order(StringComparer.Ordinal).ToArray();
}
