using VSwitch.Core.Flow;
using VSwitch.Core.Tables.Conntrack;

namespace VSwitch.Core.Tables.Services;

/// <summary>A frontend with one fixed backend: the gateway's DNS port, sent to the switch's own DNS server.</summary>
public sealed class FixedPicker(UInt128 address, ushort port, int label, string note) : IBackendPicker
{
    public bool TryPick(in ConnTuple orig, out UInt128 a, out ushort p, out int l, out string? traceNote)
    {
        a = address;
        p = port;
        l = label;
        traceNote = note;
        return true;
    }
}
