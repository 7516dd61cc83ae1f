using System.Runtime.InteropServices;

namespace VSwitch.Core.Ports.Linux;

/// <summary>
/// How the kernel schedules a datapath thread. A thread asleep in epoll_wait that a frame wakes must first be run
/// by the scheduler; on a loaded machine that wait, not the switch's work, is most of a ping's time through the
/// switch. Two levers, both costing no CPU while idle:
/// <list type="bullet">
/// <item>a short EEVDF slice (<c>sched_setattr</c> with <c>sched_runtime</c> on a SCHED_OTHER thread, kernel 6.12+):
/// the woken thread gets an earlier virtual deadline and preempts the running task at once (PREEMPT_SHORT) instead of
/// waiting for its slice to end; its CPU share is unchanged;</item>
/// <item>SCHED_FIFO (real time): runs before every ordinary task; the kernel's RT throttling still leaves 5 % to them.</item>
/// </list>
/// </summary>
public static unsafe class ThreadScheduling
{
    [StructLayout(LayoutKind.Sequential)]
    private struct SchedAttr
    {
        public uint Size;
        public uint Policy;
        public ulong Flags;
        public int Nice;
        public uint Priority;
        public ulong Runtime;
        public ulong Deadline;
        public ulong Period;
    }

    private const uint SchedOther = 0, SchedFifo = 1;

    [DllImport("libc", SetLastError = true)]
    private static extern long syscall(long number, int pid, SchedAttr* attr, uint flags);

    private static long SchedSetattrNumber => RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.X64 => 314,
        Architecture.Arm64 => 274,
        _ => -1,
    };

    /// <summary>
    /// Applies to the calling thread: SCHED_FIFO at <paramref name="realtimePriority"/> (1..99) when above 0, else
    /// SCHED_OTHER with a slice of <paramref name="sliceMicroseconds"/> (the kernel clamps it to 100 µs..100 ms) when above 0.
    /// Returns null when applied (or nothing asked), else why not (an old kernel, no privilege): the thread then runs as before.
    /// </summary>
    public static string? Apply(int sliceMicroseconds, int realtimePriority)
    {
        if (sliceMicroseconds <= 0 && realtimePriority <= 0) return null;
        long nr = SchedSetattrNumber;
        if (nr < 0) return $"sched_setattr: not known on {RuntimeInformation.ProcessArchitecture}";
        var attr = new SchedAttr { Size = (uint)sizeof(SchedAttr) };
        if (realtimePriority > 0)
        {
            attr.Policy = SchedFifo;
            attr.Priority = (uint)realtimePriority;
        }
        else
        {
            attr.Policy = SchedOther;
            // Keep the thread's nice value: sched_setattr sets it too.
            attr.Nice = (int)GetPriority();
            attr.Runtime = (ulong)sliceMicroseconds * 1000;
        }
        if (syscall(nr, 0, &attr, 0) == 0) return null;
        int errno = Marshal.GetLastPInvokeError();
        return $"sched_setattr({(realtimePriority > 0 ? $"SCHED_FIFO {realtimePriority}" : $"slice {sliceMicroseconds} us")}) failed: {NativeError.Name(errno)}";
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int getpriority(int which, uint who);

    private static int GetPriority() => getpriority(0 /* PRIO_PROCESS */, 0);
}
