using System.Numerics;
using System.Runtime.InteropServices;
using Microsoft.ML.Apd.Persistence;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.Apd;

/// <summary>One task's usable rows as counted by <see cref="TrainingRows.Survey"/>, and its distinct label ids.</summary>
internal sealed record TaskSurvey(string Task, long RowCount, IReadOnlyCollection<int> LabelIds);

/// <summary>
/// The training data as cursors over its usable rows, without keeping any: every pass (the first one, each in-memory
/// load, each streamed epoch) opens a new cursor on the <see cref="IDataView"/>. A row is usable when its label is
/// present and finite (not NaN, ±Infinity or key 0) and all its features are finite; the others are skipped, as in
/// ML.NET trainers, and counted by the first pass. A failure of the data itself (a file that disappears or is corrupt
/// half-way) surfaces as <see cref="InvalidOperationException"/> naming the pass and the row.
/// </summary>
internal sealed class TrainingRows
{
    private readonly IDataView _data;
    private readonly DataViewSchema.Column _features;
    private readonly DataViewSchema.Column _label;
    private readonly DataViewSchema.Column? _taskColumn;
    private readonly string _fixedTask;
    private readonly IHostEnvironment _env;
    private readonly CancellationToken _cancellation;

    /// <summary>Rows of <paramref name="data"/>; <paramref name="taskColumn"/> is the task id column, or null when every
    /// row belongs to <paramref name="fixedTask"/>; cancelled by <paramref name="cancellation"/> or the MLContext.</summary>
    public TrainingRows(IDataView data, DataViewSchema.Column features, DataViewSchema.Column label, LabelValueIds labels,
        DataViewSchema.Column? taskColumn, string fixedTask, IHostEnvironment env, CancellationToken cancellation)
    {
        _data = data;
        _features = features;
        _label = label;
        Labels = labels;
        _taskColumn = taskColumn;
        _fixedTask = fixedTask;
        _env = env;
        _cancellation = cancellation;
        FeatureCount = ((VectorDataViewType)features.Type).Size;
    }

    public int FeatureCount { get; }
    public LabelValueIds Labels { get; }

    /// <summary>
    /// The first pass: each task's usable rows and label ids (tasks in order of first appearance), one warning per
    /// column for skipped rows. Keeps no rows. Throws for a usable row with an empty task id and when no row is usable.
    /// </summary>
    public IReadOnlyList<TaskSurvey> Survey(IChannel channel)
    {
        var byTask = new Dictionary<string, TaskCount>();
        var order = new List<TaskCount>();
        var scratch = new float[FeatureCount];
        long skippedLabel = 0, skippedFeatures = 0;
        using (var cursor = Open(task: null, classOfLabelId: null, shuffle: null, "the first pass over the training data"))
        {
            TaskCount? last = null;
            while (cursor.MoveNext(scratch, out var row, out int labelId))
            {
                if (row == RowKind.MissingLabel) { skippedLabel++; continue; }
                if (row == RowKind.NonFiniteFeatures) { skippedFeatures++; continue; }
                string task = cursor.Task(last?.Task);
                if (!ReferenceEquals(task, last?.Task) && !byTask.TryGetValue(task, out last))
                {
                    last = new TaskCount(task);
                    byTask.Add(task, last);
                    order.Add(last);
                }
                last!.Rows++;
                last.Labels.Add(labelId);
            }
        }

        if (skippedLabel > 0)
            channel.Warning($"Skipped {skippedLabel} rows with a missing or non-finite value in label column '{_label.Name}'.");
        if (skippedFeatures > 0)
            channel.Warning($"Skipped {skippedFeatures} rows with NaN or infinite values in feature column '{_features.Name}'.");
        if (order.Count == 0)
            throw new ArgumentException(
                $"The training data has no usable rows (feature column '{_features.Name}', label column '{_label.Name}'): " +
                $"{skippedLabel} rows had a missing or non-finite label and {skippedFeatures} rows NaN or infinite features.", "data");
        return order.Select(t => new TaskSurvey(t.Task, t.Rows, t.Labels)).ToList();
    }

    /// <summary>
    /// A cursor over every row (task null) or over the usable rows of one task, whose labels it reports as class indices
    /// of <paramref name="classOfLabelId"/> (class index of each label id, −1 for labels not of the task). Rows come in
    /// the data's order, or in the order of the data's own shuffling (<see cref="IDataView.CanShuffle"/>) when
    /// <paramref name="shuffle"/> is given. <paramref name="pass"/> names the pass in error messages.
    /// </summary>
    public Cursor Open(string? task, int[]? classOfLabelId, Random? shuffle, string pass)
    {
        var active = new List<DataViewSchema.Column> { _features, _label };
        if (_taskColumn is { } t) active.Add(t);
        DataViewRowCursor cursor;
        try
        {
            cursor = _data.GetRowCursor(active, _data.CanShuffle ? shuffle : null);
        }
        catch (Exception e) when (e is not OperationCanceledException and not OutOfMemoryException)
        {
            throw ReadFailure(pass, "opening a cursor", e);
        }
        return new Cursor(this, cursor, task, classOfLabelId, pass);
    }

    private static InvalidOperationException ReadFailure(string pass, string where, Exception e) => new(
        $"Reading the training data failed during {pass}, at {where}: {e.Message} The Fit stopped; earlier models are unchanged.", e);

    private sealed class TaskCount(string task)
    {
        public string Task { get; } = task;
        public long Rows;
        public readonly HashSet<int> Labels = new();
    }

    internal enum RowKind { Usable, MissingLabel, NonFiniteFeatures }

    /// <summary>A cursor of <see cref="TrainingRows"/>; rows of other tasks are passed over.</summary>
    internal sealed class Cursor : IDisposable
    {
        private readonly TrainingRows _rows;
        private readonly DataViewRowCursor _cursor;
        private readonly string? _onlyTask;
        private readonly int[]? _classOfLabelId;
        private readonly string _pass;
        private readonly ValueGetter<VBuffer<float>> _features;
        private readonly Func<int> _labelId;
        private readonly ValueGetter<ReadOnlyMemory<char>>? _task;
        private VBuffer<float> _buffer;
        private ReadOnlyMemory<char> _taskText;

        public Cursor(TrainingRows rows, DataViewRowCursor cursor, string? onlyTask, int[]? classOfLabelId, string pass)
        {
            _rows = rows;
            _cursor = cursor;
            _onlyTask = onlyTask;
            _classOfLabelId = onlyTask is null ? null : classOfLabelId ?? throw new ArgumentNullException(nameof(classOfLabelId));
            _pass = pass;
            _features = cursor.GetGetter<VBuffer<float>>(rows._features);
            _labelId = rows.Labels.Bind(cursor);
            if (rows._taskColumn is { } t) _task = cursor.GetGetter<ReadOnlyMemory<char>>(t);
        }

        /// <summary>
        /// Advances to the next row: any row for an every-task cursor (<paramref name="row"/> says whether it is usable,
        /// <paramref name="label"/> is its label id), the next usable row for a task cursor (<paramref name="label"/> is
        /// its class index). Its features are written to <paramref name="features"/> (<see cref="FeatureCount"/>
        /// values). False at the end of the data.
        /// </summary>
        public bool MoveNext(Span<float> features, out RowKind row, out int label)
        {
            while (Advance(features, out row, out label))
            {
                if (_classOfLabelId is null) return true;
                if (row != RowKind.Usable) continue;
                label = label < _classOfLabelId.Length ? _classOfLabelId[label] : -1;
                if (label < 0) throw DataChanged($"task '{_onlyTask}' has a label its first pass did not see");
                return true;
            }
            return false;
        }

        /// <summary>The next row of the cursor's task (any task for an every-task cursor); the data's failures wrapped.</summary>
        private bool Advance(Span<float> features, out RowKind row, out int labelId)
        {
            try
            {
                while (true)
                {
                    row = RowKind.Usable;
                    labelId = LabelValueIds.Missing;
                    if (!_cursor.MoveNext()) return false;
                    if ((_cursor.Position & 1023) == 0) _rows.ThrowIfCanceled();
                    if (_task is not null)
                    {
                        _task(ref _taskText);
                        if (_onlyTask is not null && !_taskText.Span.SequenceEqual(_onlyTask)) continue;
                    }
                    labelId = _labelId();
                    if (labelId == LabelValueIds.Missing) { row = RowKind.MissingLabel; return true; }
                    _features(ref _buffer);
                    Densify(_buffer, features);
                    row = AllFinite(features) ? RowKind.Usable : RowKind.NonFiniteFeatures;
                    return true;
                }
            }
            catch (Exception e) when (e is not OperationCanceledException and not OutOfMemoryException)
            {
                throw ReadFailure(_pass, $"row {_cursor.Position}", e);
            }
        }

        /// <summary>The error for data that differ between passes (a file replaced during Fit, a non-deterministic source).</summary>
        public InvalidOperationException DataChanged(string what) =>
            new($"The training data changed during Fit ({_pass}): {what}. The Fit stopped; earlier models are unchanged.");

        /// <summary>Throws <see cref="DataChanged"/> unless <paramref name="rows"/> equals the first pass's count (more
        /// rows are reported as soon as they appear).</summary>
        public void CheckCount(long rows, long expected, bool atEnd)
        {
            if (rows > expected || (atEnd && rows != expected))
                throw DataChanged($"task '{_onlyTask}' had {expected} usable rows in the first pass and {(atEnd ? rows.ToString() : "more")} now");
        }

        /// <summary>The current row's task (every-task cursors); <paramref name="previous"/> is returned when equal, sparing a string.</summary>
        public string Task(string? previous)
        {
            if (_task is null) return _rows._fixedTask;
            if (_taskText.IsEmpty || _taskText.Span.IsWhiteSpace())
                throw new InvalidOperationException(
                    $"Row {_cursor.Position} has an empty task id in column '{_rows._taskColumn!.Value.Name}'; every row needs its task's name.");
            return previous is not null && _taskText.Span.SequenceEqual(previous) ? previous : _taskText.ToString();
        }

        public void Dispose() => _cursor.Dispose();
    }

    private void ThrowIfCanceled()
    {
        _cancellation.ThrowIfCancellationRequested();
        if (MLNetInternal.IsCanceled(_env))
            throw new OperationCanceledException("Operation was canceled.");
    }

    private static void Densify(in VBuffer<float> source, Span<float> destination)
    {
        var values = source.GetValues();
        if (source.IsDense)
        {
            values.CopyTo(destination);
            return;
        }
        destination.Clear();
        var indices = source.GetIndices();
        for (int i = 0; i < indices.Length; i++) destination[indices[i]] = values[i];
    }

    /// <summary>x − x is 0 for every finite x and NaN for NaN and ±Infinity.</summary>
    private static bool AllFinite(ReadOnlySpan<float> values)
    {
        var vectors = MemoryMarshal.Cast<float, Vector<float>>(values);
        var sum = Vector<float>.Zero;
        foreach (var v in vectors) sum += v - v;
        float total = Vector.Sum(sum);
        for (int i = vectors.Length * Vector<float>.Count; i < values.Length; i++) total += values[i] - values[i];
        return total == 0;
    }
}
