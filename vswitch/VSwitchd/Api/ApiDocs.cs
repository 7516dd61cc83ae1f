using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.AspNetCore.OpenApi;
using VSwitch.Api;

namespace VSwitchd.Api;

/// <summary>
/// What the OpenAPI document (/openapi/v1.json) says beyond what the handlers' types give it: a
/// summary for every route, the error statuses each can answer (all with <see cref="ApiErrorBody"/>),
/// and an example for every request body. The success responses come from the handlers' typed
/// results. A test holds every route of the daemon to having an entry here.
/// </summary>
public static class ApiDocs
{
    /// <summary>
    /// Every /v1 route may answer these: a body that does not bind or a bad value (400), a caller whose role does not
    /// allow the request (403, README "Access control and audit"), the daemon stopping (503), a bug (500).
    /// </summary>
    private static readonly int[] Common = [400, 403, 500, 503];

    /// <summary>"METHOD /path" → the summary and the error statuses the route adds to <see cref="Common"/>.</summary>
    public static readonly IReadOnlyDictionary<string, (string Summary, int[] Errors)> Routes = new Dictionary<string, (string, int[])>
    {
        ["GET /v1/cluster"] = ("Cluster mode: the store (etcd or a file), whether it answers and since when not, this host's lease, the cluster network", [404]),
        ["GET /v1/cluster/hosts"] = ("Cluster mode: every other host (subnet, public IP, VTEP MAC, lease expiry, programmed or why not, frames and bytes to and from it)", [404]),
        ["GET /v1/show"] = ("Overview: version, uptime, threads, networks with their ports (ovs-vsctl show)", []),
        ["GET /v1/networks"] = ("List networks with their addresses in use", []),
        ["GET /v1/networks/{name}"] = ("One network", [404]),
        ["POST /v1/networks"] = ("Create a network (as in the config file)", [409]),
        ["DELETE /v1/networks/{name}"] = ("Delete a network (refused while ports or attachments use it)", [404, 409]),
        ["POST /v1/networks/{name}/connections"] = ("Connect two routed networks: the router routes between them, both ways (isolated otherwise); stored", [404, 409]),
        ["DELETE /v1/networks/{name}/connections/{other}"] = ("Disconnect two networks: isolated again, cached flows between them cut", [404]),
        ["PATCH /v1/networks/{name}"] = ("North-south settings of a routed network: hostPort on or off, hostAddress, masquerade (a field left out keeps its value); stored", [404, 409]),
        ["GET /v1/publish"] = ("Published ports: host port and protocol, the container's IP:PORT, the host addresses, connections taken and open", []),
        ["POST /v1/publish"] = ("Publish a host port (docker run -p): connections to the host's address and port reach a container; stored", [404, 409]),
        ["DELETE /v1/publish"] = ("Remove a published port: ?id= as listed (like *:8080/tcp)", [404]),
        ["GET /v1/ports"] = ("List ports with counters and state; ?network= filters", [404]),
        ["GET /v1/ports/{name}"] = ("One port", [404]),
        ["POST /v1/ports"] = ("Create a port (as in the config file); an address another holder has is a conflict", [404, 409]),
        ["PATCH /v1/ports/{name}"] = ("Change a port's security: portSecurity and pinMac on or off (a field left out keeps its value)", [400, 404, 409]),
        ["DELETE /v1/ports/{name}"] = ("Delete a port (a TAP it created disappears)", [404]),
        ["GET /v1/threads"] = ("Datapath threads and the port receive queues each polls, with frames and share of the thread's busy time (ovs-appctl dpif-netdev/pmd-rxq-show)", []),
        ["POST /v1/threads/pin"] = ("Pin a port's receive queue to a thread (thread null: unpin); moved without loss, stored (pmd-rxq-affinity)", [400, 404]),
        ["POST /v1/threads/rebalance"] = ("Place the unpinned receive queues again: assign cycles (by measured load, the default) or roundrobin (pmd-rxq-rebalance)", []),
        ["GET /v1/fdb"] = ("The MAC table; ?network= and ?port= filter", [404]),
        ["DELETE /v1/fdb"] = ("Flush learned MACs (static ones stay); ?network= or ?port= for part", [404]),
        ["POST /v1/fdb"] = ("Add a static remote MAC behind a VTEP (stored)", [404, 409]),
        ["DELETE /v1/fdb/{mac}"] = ("Delete one MAC entry of a network, learned or static", [404]),
        ["GET /v1/stats"] = ("Counters: ports, drops per stage and reason, stage cost, flow caches", []),
        ["GET /v1/rules"] = ("The rule table; ?match= (rule syntax) and ?strict= select as DELETE does", []),
        ["POST /v1/rules"] = ("Add or replace a rule (ovs-ofctl add-flow syntax)", [404]),
        ["DELETE /v1/rules"] = ("Delete the rules a match selects; strict: that match at that priority (default 32768)", []),
        ["GET /v1/flows"] = ("Datapath flows in the flow caches; ?match=, ?port=, ?network= filter", [404]),
        ["DELETE /v1/flows"] = ("Flush the flow caches", []),
        ["GET /v1/policies"] = ("Network policies with the attachments they select and the connections they allowed and denied", []),
        ["GET /v1/policies/{name}"] = ("One network policy", [404]),
        ["POST /v1/policies"] = ("Add or replace a network policy (Kubernetes NetworkPolicy semantics over attachment labels); stored", [409]),
        ["DELETE /v1/policies/{name}"] = ("Delete a network policy", [404]),
        ["GET /v1/conntrack"] = ("Tracked connections (conntrack -L); ?proto=, ?src=, ?dst=, ?port=, ?state=, ?nat=, ?limit= filter", []),
        ["DELETE /v1/conntrack"] = ("Forget every tracked connection (conntrack -F)", []),
        ["POST /v1/trace"] = ("Trace a made-up packet through the real stages without sending it (ofproto/trace)", [404]),
        ["POST /v1/trace/live"] = ("Trace the next real packets a filter selects as they pass (VPP's trace add)", [404]),
        ["POST /v1/capture"] = ("Capture frames on a port (rx, tx or both; a filter in rule syntax; a count, snap length, duration) or the pipeline's drops " +
                                "with their reason and stage: the answer is a pcapng stream (application/x-pcapng) ending with the capture's statistics, frames lost to a slow reader included", [404, 409]),
        ["GET /v1/ipfix"] = ("The IPFIX exporter: collector, sampling, timeouts, domain, and what it sent", []),
        ["PUT /v1/ipfix"] = ("Export flows as IPFIX (RFC 7011) over UDP to a collector, or change the export; stored", []),
        ["DELETE /v1/ipfix"] = ("Stop the IPFIX export (the flows' last counts are sent first)", [404]),
        ["GET /v1/mirrors"] = ("Port mirrors (OVS's Mirror table): sources, direction, VLAN, output port, copies sent", []),
        ["GET /v1/mirrors/{name}"] = ("One port mirror", [404]),
        ["POST /v1/mirrors"] = ("Add a port mirror: copies of the sources' frames (rx, tx or both; one VLAN or all) out of the output port; stored", [404, 409]),
        ["DELETE /v1/mirrors/{name}"] = ("Delete a port mirror", [404]),
        ["GET /v1/routes"] = ("The routes, IPv4 and IPv6 (connected and static, ECMP paths)", []),
        ["POST /v1/routes"] = ("Add a static route (IPv4 or IPv6 prefix) via a next hop or out of a network", [404, 409]),
        ["DELETE /v1/routes"] = ("Delete a static route, or one path of it", [404, 409]),
        ["GET /v1/neighbors"] = ("The neighbour table: ARP and IPv6 neighbour discovery (with RFC 4861 states); ?network= filters", [404]),
        ["POST /v1/neighbors"] = ("Add a static neighbour (stored)", [404, 409]),
        ["DELETE /v1/neighbors"] = ("Flush learned neighbours", [404]),
        ["GET /v1/overlay"] = ("The VXLAN endpoint, VTEPs per network, counters per VTEP", []),
        ["PUT /v1/overlay"] = ("Open or move this host's VXLAN endpoint (stored)", []),
        ["DELETE /v1/overlay"] = ("Close the VXLAN endpoint (refused while a VXLAN network needs it)", [404, 409]),
        ["POST /v1/networks/{name}/vteps"] = ("Add a remote VTEP to a VXLAN network", [404, 409]),
        ["DELETE /v1/networks/{name}/vteps/{vtep}"] = ("Remove a remote VTEP from a VXLAN network", [404]),
        ["POST /v1/attachments"] = ("Attach a namespace (a container) to a network: TAP, address, route", [404, 409]),
        ["GET /v1/attachments"] = ("List attachments; filter by network, containerId, netns, ifname", []),
        ["GET /v1/attachments/{id}"] = ("One attachment", [404]),
        ["GET /v1/attachments/{id}/check"] = ("Check an attachment against its namespace (CNI CHECK)", [404]),
        ["DELETE /v1/attachments/{id}"] = ("Detach one attachment", [404]),
        ["PATCH /v1/attachments/{id}"] = ("Replace an attachment's labels (services' selectors and policy follow)", [404]),
        ["DELETE /v1/attachments"] = ("Detach what a container or a namespace has attached (CNI DEL)", [404]),
        ["GET /v1/services"] = ("Services (load-balanced VIPs) with their backends: weight, state, health, Maglev slots, connections, packets, bytes", []),
        ["GET /v1/services/{name}"] = ("One service", [404]),
        ["POST /v1/services"] = ("Create a service: a VIP outside every network's subnet, ports, affinity, selector, health check (stored)", [409]),
        ["DELETE /v1/services/{name}"] = ("Delete a service (its connections in the conntrack table go on until they end)", [404]),
        ["POST /v1/services/{name}/backends"] = ("Add a backend IP:PORT (or IP) with a weight; an existing one gets the new weight and stops draining", [404]),
        ["DELETE /v1/services/{name}/backends/{address}"] = ("Remove a backend added by address (its connections go on)", [404]),
        ["POST /v1/services/{name}/backends/{address}/drain"] = ("Drain a backend: its connections go on, new ones go to the others", [404]),
        ["DELETE /v1/services/{name}/backends/{address}/drain"] = ("End a backend's drain", [404]),
        ["GET /v1/audit"] = ("The audit log: every request that may change something, with its caller (uid, user, pid) and status; " +
                             "?since= (RFC 3339 time) and ?limit= (default 100) select the newest, oldest first", []),
        ["POST /v1/restart"] = ("Restart without loss: hand every open port, the API socket and the state lock to a new vswitchd (this binary or `binary`), then exit; on failure this one keeps running (500 with why)", [409]),
    };

    /// <summary>An example of each request body, as a user would send it.</summary>
    public static readonly IReadOnlyDictionary<Type, JsonNode> Examples = new Dictionary<Type, JsonNode>
    {
        [typeof(NetworkRequest)] = new JsonObject { ["name"] = "blue", ["subnet"] = "10.1.0.0/24", ["gateway"] = "10.1.0.1", ["subnet6"] = "fd00:1::/64", ["mtu"] = 1500 },
        [typeof(NetworkConnectionRequest)] = new JsonObject { ["network"] = "green" },
        [typeof(PortRequest)] = new JsonObject { ["name"] = "tapa", ["type"] = "tap", ["network"] = "blue", ["netns"] = "ns1", ["addresses"] = new JsonArray("10.1.0.2/24") },
        [typeof(PortSettingsRequest)] = new JsonObject { ["portSecurity"] = true, ["pinMac"] = true },
        [typeof(RuleRequest)] = new JsonObject { ["rule"] = "priority=100,in_port=tapa,icmp,actions=drop" },
        [typeof(RouteRequest)] = new JsonObject { ["prefix"] = "10.9.0.0/16", ["via"] = "10.1.0.254" },
        [typeof(NeighborRequest)] = new JsonObject { ["network"] = "blue", ["ip"] = "10.1.0.254", ["mac"] = "02:00:00:00:00:fe" },
        [typeof(TraceRequest)] = new JsonObject { ["spec"] = "in_port=tapa,icmp,nw_src=10.1.0.2,nw_dst=10.2.0.2" },
        [typeof(LiveTraceRequest)] = new JsonObject { ["filter"] = "icmp,nw_dst=10.1.0.3", ["count"] = 5, ["timeoutSeconds"] = 10 },
        [typeof(CaptureRequest)] = new JsonObject { ["port"] = "tapa", ["direction"] = "both", ["filter"] = "icmp", ["count"] = 4, ["snapLength"] = 262144, ["durationSeconds"] = 10 },
        [typeof(IpfixRequest)] = new JsonObject { ["collector"] = "127.0.0.1:4739", ["sampling"] = 1, ["activeTimeoutSeconds"] = 60, ["idleTimeoutSeconds"] = 15, ["domainId"] = 1 },
        [typeof(MirrorRequest)] = new JsonObject { ["name"] = "span1", ["sources"] = new JsonArray("tapa"), ["direction"] = "both", ["output"] = "tapm" },
        [typeof(OverlayRequest)] = new JsonObject { ["local"] = "192.168.50.1", ["port"] = 4789 },
        [typeof(VtepRequest)] = new JsonObject { ["vtep"] = "192.168.50.2" },
        [typeof(RemoteMacRequest)] = new JsonObject { ["network"] = "ov", ["mac"] = "02:00:00:00:00:42", ["vtep"] = "192.168.50.2" },
        [typeof(ServiceRequest)] = new JsonObject { ["name"] = "web", ["vip"] = "10.96.0.10", ["ports"] = new JsonArray("80:8080/tcp"), ["affinity"] = "none", ["selector"] = new JsonObject { ["app"] = "web" } },
        [typeof(HealthCheckRequest)] = new JsonObject { ["intervalMs"] = 1000, ["timeoutMs"] = 500, ["fall"] = 2, ["rise"] = 2, ["path"] = "/healthz" },
        [typeof(BackendRequest)] = new JsonObject { ["address"] = "10.1.0.7:8080", ["weight"] = 2 },
        [typeof(AttachRequest)] = new JsonObject { ["network"] = "blue", ["netns"] = "web", ["ifname"] = "eth0", ["labels"] = new JsonObject { ["app"] = "web" } },
        [typeof(PolicyRequest)] = new JsonObject
        {
            ["name"] = "db-ingress", ["selector"] = new JsonObject { ["app"] = "db" },
            ["ingress"] = new JsonArray(new JsonObject
            {
                ["peers"] = new JsonArray(new JsonObject { ["selector"] = new JsonObject { ["app"] = "web" } }),
                ["ports"] = new JsonArray(new JsonObject { ["port"] = 5432, ["protocol"] = "tcp" }),
            }),
        },
        [typeof(AttachmentLabelsRequest)] = new JsonObject { ["labels"] = new JsonObject { ["app"] = "web", ["tier"] = "front" } },
        [typeof(NetworkSettingsRequest)] = new JsonObject { ["hostPort"] = true, ["hostAddress"] = "10.1.0.254", ["masquerade"] = true },
        [typeof(PublishRequest)] = new JsonObject { ["network"] = "blue", ["hostPort"] = 8080, ["proto"] = "tcp", ["to"] = "10.1.0.5:80" },
        [typeof(RxQueuePinRequest)] = new JsonObject { ["port"] = "tapa", ["queue"] = 1, ["thread"] = 0 },
        [typeof(RxQueueRebalanceRequest)] = new JsonObject { ["assign"] = "cycles" },
        [typeof(RestartRequest)] = new JsonObject { ["binary"] = "/usr/local/bin/vswitchd" },
    };

    /// <summary>Adds each route's summary and error statuses once the routes exist (a "finally" convention sees their final pattern and method).</summary>
    public static void Describe(RouteGroupBuilder v1) => ((IEndpointConventionBuilder)v1).Finally(eb =>
    {
        if (eb is not RouteEndpointBuilder r) return;
        string? method = r.Metadata.OfType<IHttpMethodMetadata>().FirstOrDefault()?.HttpMethods.FirstOrDefault();
        if (method is null || !Routes.TryGetValue($"{method} {r.RoutePattern.RawText}", out var doc)) return;
        r.Metadata.Add(new EndpointSummaryMetadata(doc.Summary));
        foreach (int status in Common.Concat(doc.Errors))
            r.Metadata.Add(new ProducesResponseTypeMetadata(status, typeof(ApiErrorBody), ["application/json"]));
    });

    /// <summary>Puts the examples into the request bodies' schemas.</summary>
    public static void AddExamples(OpenApiOptions o) => o.AddSchemaTransformer((schema, ctx, _) =>
    {
        if (Examples.TryGetValue(ctx.JsonTypeInfo.Type, out var example)) schema.Example = example.DeepClone();
        return Task.CompletedTask;
    });

    private sealed class EndpointSummaryMetadata(string summary) : IEndpointSummaryMetadata
    {
        public string Summary => summary;
    }
}
