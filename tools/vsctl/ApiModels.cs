using System.Text.Json;
using System.Text.Json.Serialization;

namespace VSwitch.Ctl;

// The client's view of vswitchd's /v1 JSON (vswitch/VSwitchd/Api/ApiModels.cs). Kept as a copy
// rather than a project reference so vsctl does not pull in the daemon and ASP.NET Core.

public sealed record ApiError(string? Error);

public sealed record NetworkView(string Name, int Id, int Vlan, long? Vni, int MacAgingSeconds, string[] Ports)
{
    public string? Subnet { get; init; }
    public string? Gateway { get; init; }
    public int? Mtu { get; init; }
    public AllocationView[]? Allocations { get; init; }
}

public sealed record AllocationView(string Address, string Attachment, string ContainerId, string Ifname, string Port);

public sealed record CountersView(long RxPackets, long RxBytes, long TxPackets, long TxBytes, long RxDrops, long TxDrops);

public sealed record PortView(string Name, int Id, string Type, string Network, string VlanMode, int Vlan, int[] Trunks,
    int NativeVlan, string? Netns, string? Device, string? Mac, string[] Addresses, CountersView Counters);

public sealed record FdbEntryView(string Network, int Vlan, string Mac, string Port, double AgeSeconds, bool Static);

public sealed record StageView(string Name, long Calls, long Packets, double NsPerPacket, double PacketsPerCall);

public sealed record DropView(string Reason, long Packets);

public sealed record StatsView(PortView[] Ports, DropView[] Drops, StageView[] Stages, int MacEntries, int MacCapacity);

public sealed record ShowView(string Version, double UptimeSeconds, int Threads, bool BusyPoll, NetworkView[] Networks, PortView[] Ports, int MacEntries);

public sealed record FlushResult(int Removed);

/// <summary>POST /v1/networks (the daemon's NetworkConfig). Null fields are left out so the daemon's defaults apply.</summary>
public sealed record NetworkRequest(string Name, int? Vlan, int? Vni, int? MacAgingSeconds)
{
    public string? Subnet { get; init; }
    public string? Gateway { get; init; }
    public int? Mtu { get; init; }
}

/// <summary>POST /v1/ports (the daemon's PortConfig).</summary>
public sealed record PortRequest(string Name, string Type, string Network, string? Netns, string[]? Addresses, string? Gateway,
    string? Mac, int? Mtu, string? Device, string VlanMode, int? Vlan, int[]? Trunks, int? NativeVlan);

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ApiError))]
[JsonSerializable(typeof(NetworkView))]
[JsonSerializable(typeof(NetworkView[]))]
[JsonSerializable(typeof(PortView))]
[JsonSerializable(typeof(PortView[]))]
[JsonSerializable(typeof(FdbEntryView[]))]
[JsonSerializable(typeof(StatsView))]
[JsonSerializable(typeof(ShowView))]
[JsonSerializable(typeof(FlushResult))]
[JsonSerializable(typeof(NetworkRequest))]
[JsonSerializable(typeof(PortRequest))]
internal sealed partial class ApiJson : JsonSerializerContext;
