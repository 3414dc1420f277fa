namespace Microsoft.ML.Apd.Engine;

/// <summary>Something derived from one task's stored parameters for scoring (its composed θ as tensors, its managed
/// copy, its first-layer factors) that <see cref="TaskWeightCache"/> may keep: it knows its size.</summary>
internal interface ICachedWeights : IDisposable
{
    /// <summary>Bytes held (tensor elements or managed arrays).</summary>
    long Bytes { get; }
}

/// <summary>
/// Per-task weights derived for scoring, kept within a byte budget: when an insertion exceeds it, the least recently
/// used entries are dropped (disposed), so scoring rows of thousands of tasks holds at most the budget, not one θ per
/// task. Entries are keyed by task and kind (the value's type). Thread-safe. A caller gets what it needs from an entry
/// under the cache's lock (<c>use</c>): a tensor entry hands out new handles on its storage (the caller disposes them),
/// so an entry evicted while the caller still computes with it frees its storage only when the caller is done.
/// </summary>
internal sealed class TaskWeightCache : IDisposable
{
    /// <summary>Default budget (<see cref="ApdTrainer.Options.Defaults.ScoringCacheMegabytes"/>): about 130 tasks of the
    /// default 784-256-128 network as tensors and managed copies.</summary>
    public const long DefaultBudgetBytes = (long)ApdTrainer.Options.Defaults.ScoringCacheMegabytes << 20;

    private readonly object _sync = new();
    private readonly Dictionary<(string Task, Type Kind), LinkedListNode<(string Task, Type Kind, ICachedWeights Value)>> _entries = new();
    // Most recently used first.
    private readonly LinkedList<(string Task, Type Kind, ICachedWeights Value)> _recency = new();
    private long _budget = DefaultBudgetBytes;
    private long _bytes;

    /// <summary>The budget in bytes (≥ 0; 0 keeps nothing). Lowering it evicts at once.</summary>
    public long BudgetBytes
    {
        get { lock (_sync) return _budget; }
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            lock (_sync)
            {
                _budget = value;
                EvictOverBudget();
            }
        }
    }

    /// <summary>Bytes held now (≤ <see cref="BudgetBytes"/> between calls).</summary>
    public long Bytes { get { lock (_sync) return _bytes; } }

    /// <summary>Entries held now.</summary>
    public int Count { get { lock (_sync) return _entries.Count; } }

    /// <summary>
    /// <paramref name="use"/> applied to the task's cached <typeparamref name="T"/>, created by <paramref name="create"/>
    /// (outside the lock) when absent. The entry becomes the most recently used; then older entries are evicted until
    /// the budget holds (the new one too if it alone exceeds it — <paramref name="use"/> has run by then).
    /// </summary>
    public TResult Use<T, TResult>(string task, Func<string, T> create, Func<T, TResult> use) where T : class, ICachedWeights
    {
        var key = (task, typeof(T));
        lock (_sync)
            if (_entries.TryGetValue(key, out var node))
            {
                _recency.Remove(node);
                _recency.AddFirst(node);
                return use((T)node.Value.Value);
            }
        var created = create(task);
        lock (_sync)
        {
            if (_entries.TryGetValue(key, out var node))
            {
                // Another thread created it meanwhile: keep theirs.
                created.Dispose();
                return use((T)node.Value.Value);
            }
            _entries[key] = _recency.AddFirst((task, typeof(T), created));
            _bytes += created.Bytes;
            var result = use(created);
            EvictOverBudget();
            return result;
        }
    }

    /// <summary>Drops every entry (after any change of the network's parameters).</summary>
    public void Clear()
    {
        lock (_sync)
        {
            foreach (var (_, _, value) in _recency) value.Dispose();
            _recency.Clear();
            _entries.Clear();
            _bytes = 0;
        }
    }

    private void EvictOverBudget()
    {
        while (_bytes > _budget && _recency.Last is { } oldest)
        {
            _recency.RemoveLast();
            _entries.Remove((oldest.Value.Task, oldest.Value.Kind));
            _bytes -= oldest.Value.Value.Bytes;
            oldest.Value.Value.Dispose();
        }
    }

    public void Dispose() => Clear();
}
