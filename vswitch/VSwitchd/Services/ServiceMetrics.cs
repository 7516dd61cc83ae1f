using Prometheus;

namespace VSwitchd.Services;

/// <summary>
/// Services in /metrics: per service and backend, from the same views as GET /v1/services (the picker's
/// count of new connections, and what the conntrack table holds now), and the DNS server's queries.
/// </summary>
public sealed class ServiceMetrics
{
    private readonly LoadBalancer _lb;
    private readonly Gauge _backends, _inTable, _up, _conns, _packets, _bytes, _slots;
    private readonly Counter _picked, _dnsQueries, _dnsNx;

    public ServiceMetrics(MetricFactory f, LoadBalancer lb)
    {
        _lb = lb;
        string[] svc = ["service"], be = ["service", "backend"];
        _backends = f.CreateGauge("vswitch_service_backends", "Backends of a service (static and selected).", svc);
        _inTable = f.CreateGauge("vswitch_service_backends_in_table", "Backends of a service that take new connections (not draining, not unhealthy).", svc);
        _up = f.CreateGauge("vswitch_service_backend_healthy", "1 when the backend's health checks pass (or it is not checked), 0 when it is unhealthy.", be);
        _slots = f.CreateGauge("vswitch_service_backend_slots", "Slots the backend holds in its service's Maglev table (0: draining or unhealthy).", be);
        _conns = f.CreateGauge("vswitch_service_backend_connections", "Connections to the backend in the conntrack table now.", be);
        _packets = f.CreateGauge("vswitch_service_backend_packets", "Packets (both directions) of the backend's connections in the conntrack table now.", be);
        _bytes = f.CreateGauge("vswitch_service_backend_bytes", "Bytes (both directions) of the backend's connections in the conntrack table now.", be);
        _picked = f.CreateCounter("vswitch_service_backend_connections_total", "New connections the load balancer sent to the backend.", be);
        _dnsQueries = f.CreateCounter("vswitch_dns_queries_total", "Queries the switch's DNS server answered.");
        _dnsNx = f.CreateCounter("vswitch_dns_nxdomain_total", "Queries answered NXDOMAIN (a name neither a service nor a container).");
    }

    public void Update()
    {
        foreach (var s in _lb.Views())
        {
            _backends.WithLabels(s.Name).Set(s.Backends.Length);
            _inTable.WithLabels(s.Name).Set(s.Backends.Count(b => b.InTable));
            foreach (var b in s.Backends)
            {
                _up.WithLabels(s.Name, b.Address).Set(b.Health == "unhealthy" ? 0 : 1);
                _slots.WithLabels(s.Name, b.Address).Set(b.Slots);
                _conns.WithLabels(s.Name, b.Address).Set(b.Connections);
                _packets.WithLabels(s.Name, b.Address).Set(b.Packets);
                _bytes.WithLabels(s.Name, b.Address).Set(b.Bytes);
                _picked.WithLabels(s.Name, b.Address).IncTo(b.ConnectionsTotal);
            }
        }
        _dnsQueries.IncTo(Interlocked.Read(ref _lb.Dns.Queries));
        _dnsNx.IncTo(Interlocked.Read(ref _lb.Dns.NxDomain));
    }
}
