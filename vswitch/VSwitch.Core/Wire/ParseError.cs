namespace VSwitch.Core.Wire;

/// <summary>
/// Why a header view refused a buffer (smoltcp's <c>Error</c>): Wire's own result, so that the
/// header views know nothing of the pipeline. <c>Pipeline.Classify</c> maps each to the drop reason
/// the switch counts.
/// </summary>
public enum ParseError : byte
{
    None = 0,
    RuntFrame,
    TruncatedVlan,
    TruncatedArp,
    BadArp,
    TruncatedIPv4,
    BadIpVersion,
    BadIhl,
    BadIpTotalLength,
    TruncatedIPv6,
    BadIPv6PayloadLength,
    TruncatedTcp,
    BadTcpOffset,
    TruncatedUdp,
    BadUdpLength,
    TruncatedIcmp,
}
