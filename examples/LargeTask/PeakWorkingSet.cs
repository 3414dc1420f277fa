using System.Diagnostics;

namespace Microsoft.ML.Apd.Samples.LargeTask;

/// <summary>Peak working set of this process (VmHWM); on Linux it can be reset, so a measurement covers only Fit.</summary>
public static class PeakWorkingSet
{
    public static void Reset()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        try { File.WriteAllText("/proc/self/clear_refs", "5"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    public static long Bytes()
    {
        using var process = Process.GetCurrentProcess();
        return process.PeakWorkingSet64;
    }
}
