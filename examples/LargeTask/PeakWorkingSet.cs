using System.Diagnostics;

namespace Microsoft.ML.Apd.Samples.LargeTask;

/// <summary>
/// Peak working set of this process (VmHWM; on Linux it can be reset, so a measurement covers only Fit), and a sampler
/// that splits memory into the GC's heap and the rest (native: libtorch, the runtime, code) while Fit runs.
/// </summary>
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

    /// <summary>Samples memory every 100 ms until disposed; <see cref="Summary"/> describes the largest sample.</summary>
    public sealed class Sampler : IDisposable
    {
        private readonly Thread _thread;
        private volatile bool _stop;
        private readonly long _allocatedBefore = GC.GetTotalAllocatedBytes();
        private (long WorkingSet, long Live, long Heap, long Fragmented, long Committed) _max;

        public Sampler()
        {
            _thread = new Thread(Run) { IsBackground = true };
            _thread.Start();
        }

        private void Run()
        {
            using var process = Process.GetCurrentProcess();
            while (!_stop)
            {
                process.Refresh();
                var info = GC.GetGCMemoryInfo();
                var sample = (process.WorkingSet64, GC.GetTotalMemory(false), info.HeapSizeBytes, info.FragmentedBytes, info.TotalCommittedBytes);
                if (sample.WorkingSet64 > _max.WorkingSet) _max = sample;
                Thread.Sleep(100);
            }
        }

        /// <summary>At the largest sampled working set: the GC's live bytes, heap, fragmentation and committed bytes, and the rest.</summary>
        public string Summary => $"at the sampled peak {_max.WorkingSet / 1e6:F0} MB: GC live {_max.Live / 1e6:F0} MB, heap {_max.Heap / 1e6:F0} MB " +
            $"(fragmented {_max.Fragmented / 1e6:F0} MB), GC committed {_max.Committed / 1e6:F0} MB, rest (native) {(_max.WorkingSet - _max.Committed) / 1e6:F0} MB; " +
            $"gen2 GCs {GC.CollectionCount(2)}, allocated {(GC.GetTotalAllocatedBytes() - _allocatedBefore) / 1e6:F0} MB";

        public void Dispose()
        {
            _stop = true;
            _thread.Join();
        }
    }
}
