namespace VSwitchd.Api;

public sealed record ApiError(string Error);

public sealed record NetworkView(string Name, int Id, int Vlan, long? Vni, int MacAgingSeconds, string[] Ports);

public sealed record CountersView(long RxPackets, long RxBytes, long TxPackets, long TxBytes, long RxDrops, long TxDrops);

public sealed record PortView(string Name, int Id, string Type, string Network, string VlanMode, int Vlan, int[] Trunks,
    int NativeVlan, string? Netns, string? Device, string? Mac, string[] Addresses, CountersView Counters);

public sealed record FdbEntryView(string Network, int Vlan, string Mac, string Port, double AgeSeconds, bool Static);

public sealed record StageView(string Name, long Calls, long Packets, double NsPerPacket, double PacketsPerCall);

public sealed record DropView(string Reason, long Packets);

public sealed record StatsView(PortView[] Ports, DropView[] Drops, StageView[] Stages, int MacEntries, int MacCapacity);

public sealed record ShowView(string Version, double UptimeSeconds, int Threads, bool BusyPoll, NetworkView[] Networks, PortView[] Ports, int MacEntries);

public sealed record FlushResult(int Removed);
