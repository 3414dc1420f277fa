using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Microsoft.ML.Apd.Engine;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Apd;

/// <summary>One scored row: the predicted label (canonical), the task's class probabilities, the label as a key, the
/// task that scored the row and the confidence in it (1 when the row named its task).</summary>
internal readonly record struct ApdPrediction(object Label, float[] Scores, uint LabelKey, string Task, float TaskConfidence);

/// <summary>
/// An <see cref="ApdTransformer"/> bound to one input schema: which input columns it reads, its <see cref="TaskRouting"/>,
/// the output schema it produces (input columns, then PredictedLabel, Score and, with fixed routing, the label as a key),
/// and the batched computation shared by <see cref="ApdScoredDataView"/> and <see cref="ApdRowMapper"/>.
/// </summary>
internal sealed class ApdScorer
{
    private readonly Dictionary<string, TaskLabelSet> _labelSets;
    private int _inferenceReported;

    public ApdScorer(ApdTransformer model, DataViewSchema inputSchema)
    {
        Model = model;
        InputSchema = inputSchema;
        _labelSets = model.LabelSets;
        Features = SchemaChecks.FeatureColumn(inputSchema, model.FeatureColumnName,
            model.Network.Architecture.InputSize, nameof(inputSchema));
        Routing = TaskRouting.Bind(model, inputSchema, nameof(inputSchema));
        if (Routing.FixedTask is { } task)
        {
            FixedLabels = _labelSets[task];
            var label = inputSchema.GetColumnOrNull(model.LabelColumnName);
            if (label is { } l && model.LabelType.Equals(LabelColumnType.TryCreate(l)))
                Label = l;
        }
        OutputSchema = BuildOutputSchema();
    }

    public ApdTransformer Model { get; }
    public DataViewSchema InputSchema { get; }
    public DataViewSchema OutputSchema { get; }
    public DataViewSchema.Column Features { get; }
    /// <summary>Which task scores each row.</summary>
    public TaskRouting Routing { get; }
    /// <summary>The label set of the one task every row goes to (fixed routing only).</summary>
    public TaskLabelSet? FixedLabels { get; }
    /// <summary>The input label column, re-exposed as a key of the task's classes (fixed routing only).</summary>
    public DataViewSchema.Column? Label { get; }

    public int PredictedLabelIndex => InputSchema.Count;
    public int ScoreIndex => InputSchema.Count + 1;
    public int LabelKeyIndex => Label is null ? -1 : InputSchema.Count + 2;
    public int PredictedTaskIndex => Routing.CanInfer ? InputSchema.Count + 2 : -1;
    public int TaskConfidenceIndex => Routing.CanInfer ? InputSchema.Count + 3 : -1;
    public int FeatureSize => ((VectorDataViewType)Features.Type).Size;

    /// <summary>Input columns the computed columns need.</summary>
    public IEnumerable<DataViewSchema.Column> ComputedDependencies(bool labelKeyActive)
    {
        yield return Features;
        foreach (var column in Routing.Dependencies) yield return column;
        if (labelKeyActive && Label is { } l) yield return l;
    }

    private DataViewSchema BuildOutputSchema()
    {
        var builder = new DataViewSchema.Builder();
        builder.AddColumns(InputSchema);

        var predicted = new DataViewSchema.Annotations.Builder();
        Model.LabelType.AddKeyValues(predicted);
        AddScoreKinds(predicted, "PredictedLabel");
        builder.AddColumn(Model.PredictedLabelColumnName, Model.LabelType.DataViewType, predicted.ToAnnotations());

        var score = new DataViewSchema.Annotations.Builder();
        if (FixedLabels is { } labels)
        {
            var names = labels.SlotNames;
            score.AddSlotNames(names.Length, (ref VBuffer<ReadOnlyMemory<char>> dst) =>
                dst = new VBuffer<ReadOnlyMemory<char>>(names.Length, (ReadOnlyMemory<char>[])names.Clone()));
        }
        AddScoreKinds(score, "Score");
        builder.AddColumn(Model.ScoreColumnName, new VectorDataViewType(NumberDataViewType.Single, FixedLabels?.Count ?? 0),
            score.ToAnnotations());

        if (Routing.CanInfer)
        {
            builder.AddColumn(Model.PredictedTaskColumnName, TextDataViewType.Instance);
            builder.AddColumn(Model.TaskConfidenceColumnName, NumberDataViewType.Single);
        }

        if (Label is { } label)
        {
            var names = FixedLabels!.SlotNames;
            var keyValues = new DataViewSchema.Annotations.Builder();
            keyValues.AddKeyValues(names.Length, TextDataViewType.Instance, (ref VBuffer<ReadOnlyMemory<char>> dst) =>
                dst = new VBuffer<ReadOnlyMemory<char>>(names.Length, (ReadOnlyMemory<char>[])names.Clone()));
            builder.AddColumn(label.Name, new KeyDataViewType(typeof(uint), names.Length), keyValues.ToAnnotations());
        }
        return builder.ToSchema();
    }

    // The annotations ML.NET's scorers put on their outputs, which evaluators and TrainerUtils look for.
    private static void AddScoreKinds(DataViewSchema.Annotations.Builder builder, string valueKind)
    {
        builder.Add(AnnotationUtils.Kinds.ScoreColumnKind, TextDataViewType.Instance,
            (ref ReadOnlyMemory<char> v) => v = AnnotationUtils.Const.ScoreColumnKind.MulticlassClassification.AsMemory());
        builder.Add(AnnotationUtils.Kinds.ScoreValueKind, TextDataViewType.Instance,
            (ref ReadOnlyMemory<char> v) => v = valueKind.AsMemory());
    }

    /// <summary>Reads the inputs of the current row of a cursor or row.</summary>
    public RowReader CreateReader(DataViewRow row, bool labelKeyActive) => new(this, row, labelKeyActive);

    /// <summary>
    /// Scores <paramref name="count"/> rows whose features are laid out row by row in <paramref name="features"/>:
    /// rows are grouped by task so each task's head runs once, as one batched product; rows whose task is null get it
    /// inferred, all together (<see cref="TaskInference"/>).
    /// </summary>
    public void Score(float[] features, string?[] tasks, object?[] labels, int count, ApdPrediction[] output)
    {
        foreach (var group in Enumerable.Range(0, count).GroupBy(i => tasks[i]))
        {
            int[] rows = group.ToArray();
            if (group.Key is not { } task)
            {
                ScoreInferred(features, rows, count, labels, output);
                continue;
            }
            var labelSet = _labelSets[task];
            float[] probabilities;
            using (var scope = torch.NewDisposeScope())
            using (torch.no_grad())
            {
                var logits = Model.Network.Forward(Input(features, rows, count), task);
                probabilities = logits.softmax(1).to(torch.CPU).data<float>().ToArray();
            }

            int classes = labelSet.Count;
            for (int r = 0; r < rows.Length; r++)
            {
                var scores = new float[classes];
                Array.Copy(probabilities, (long)r * classes, scores, 0, classes);
                output[rows[r]] = Predict(labelSet, scores, labels[rows[r]], task, 1);
            }
        }
    }

    private void ScoreInferred(float[] features, int[] rows, int count, object?[] labels, ApdPrediction[] output)
    {
        ReportInference();
        var tasks = Model.Tasks;
        TaskInference.Result inferred;
        using (var scope = torch.NewDisposeScope())
            inferred = TaskInference.Infer(Model.Network, tasks, Input(features, rows, count));
        for (int r = 0; r < rows.Length; r++)
        {
            string task = tasks[inferred.Tasks[r]];
            output[rows[r]] = Predict(_labelSets[task], inferred.Probabilities[r], labels[rows[r]], task, inferred.Confidences[r]);
        }
    }

    // Logged once per Transform (or row mapper): each binds its own scorer.
    private void ReportInference()
    {
        if (Interlocked.Exchange(ref _inferenceReported, 1) != 0) return;
        using var ch = Model.Environment.Register(nameof(ApdTransformer)).Start("Scoring");
        string why = Routing.TaskColumn is { } column
            ? $"rows with an empty task id in column '{column.Name}'"
            : $"the input has no task id column '{Model.TaskIdColumnName}'";
        ch.Info($"APD: {why}, so their task is inferred among {Model.Tasks.Count} tasks " +
            $"({TaskInference.RuleFor(Model.Network, Model.Tasks)} rule); " +
            $"see columns '{Model.PredictedTaskColumnName}' and '{Model.TaskConfidenceColumnName}'.");
    }

    /// <summary>
    /// The given rows of the first <paramref name="count"/> laid out in <paramref name="features"/>, as a [rows,
    /// FeatureSize] tensor in the caller's dispose scope. It reads the array in place (from_array shares it): a managed
    /// copy per block (256 rows × 784 floats = 800 KB) would be large-object garbage, collected only by a full
    /// collection, and an evaluation of 10,000 rows made 64 MB of it.
    /// </summary>
    private torch.Tensor Input(float[] features, int[] rows, int count)
    {
        var all = torch.from_array(features).view(-1, FeatureSize);
        return rows.Length == count // every row of the block, in order
            ? all.narrow(0, 0, count)
            : all.index_select(0, torch.tensor(rows.Select(r => (long)r).ToArray()));
    }

    /// <summary>
    /// Scores one row without libtorch when the network is fully connected (<see cref="Engine.ManagedTaskNetwork"/>) and
    /// the row's task is known: what <c>PredictionEngine</c> calls per row. Falls back to <see cref="Score"/> for
    /// convolutional networks and for rows whose task is inferred.
    /// Scores agree with <see cref="Score"/>'s to float rounding (the sums run in another order).
    /// </summary>
    public ApdPrediction ScoreOne(float[] features, string? task, object? label, ref (float[] A, float[] B)? scratch)
    {
        var managed = task is null ? null : Model.Network.ManagedWeights(task);
        if (managed is null)
        {
            var output = new ApdPrediction[1];
            Score(features, [task], [label], 1, output);
            return output[0];
        }
        scratch ??= managed.CreateScratch();
        var scores = new float[managed.ClassCount];
        managed.Logits(features, scores, scratch.Value);
        // softmax, shifted by the maximum for stability
        float max = scores.Max(), sum = 0;
        for (int c = 0; c < scores.Length; c++) sum += scores[c] = MathF.Exp(scores[c] - max);
        for (int c = 0; c < scores.Length; c++) scores[c] /= sum;
        return Predict(_labelSets[task!], scores, label, task!, 1);
    }

    /// <summary>
    /// The prediction for one row's class probabilities, scored by <paramref name="task"/> (with that confidence). A
    /// row that cannot be scored — NaN or ±∞ in its features, or features so large that the network overflows — gets
    /// NaN for every score and the label type's missing value as PredictedLabel (<see cref="LabelColumnType.Missing"/>),
    /// and one warning per Transform in MLContext.Log.
    /// </summary>
    private ApdPrediction Predict(TaskLabelSet labelSet, float[] scores, object? label, string task, float taskConfidence)
    {
        uint labelKey = (uint)(labelSet.IndexOf(label) + 1);
        if (!Array.TrueForAll(scores, float.IsFinite))
        {
            WarnUnscorable();
            Array.Fill(scores, float.NaN);
            return new ApdPrediction(Model.LabelType.Missing, scores, labelKey, task, taskConfidence);
        }
        int best = 0;
        for (int c = 1; c < scores.Length; c++)
            if (scores[c] > scores[best]) best = c;
        return new ApdPrediction(labelSet.Values[best], scores, labelKey, task, taskConfidence);
    }

    private int _warnedUnscorable;

    private void WarnUnscorable()
    {
        if (Interlocked.Exchange(ref _warnedUnscorable, 1) != 0) return;
        using var ch = Model.Environment.Register(nameof(ApdTransformer)).Start("Scoring");
        ch.Warning($"APD: rows with NaN or infinite values in feature column '{Features.Name}' (or values so large that the " +
            "network overflows) cannot be scored: their Score is NaN and their PredictedLabel is missing. (Warned once per Transform.)");
    }

    /// <summary>Getters of the computed columns, reading the current prediction from <paramref name="current"/>.</summary>
    public Delegate CreateComputedGetter(int columnIndex, Func<ApdPrediction> current)
    {
        if (columnIndex == PredictedLabelIndex)
            return Model.LabelType.CreateGetter(() => current().Label);
        if (columnIndex == ScoreIndex)
            return (ValueGetter<VBuffer<float>>)((ref VBuffer<float> dst) =>
            {
                var scores = current().Scores;
                var editor = VBufferEditor.Create(ref dst, scores.Length);
                scores.CopyTo(editor.Values);
                dst = editor.Commit();
            });
        if (columnIndex == LabelKeyIndex)
            return (ValueGetter<uint>)((ref uint dst) => dst = current().LabelKey);
        if (columnIndex == PredictedTaskIndex)
            return (ValueGetter<ReadOnlyMemory<char>>)((ref ReadOnlyMemory<char> dst) => dst = current().Task.AsMemory());
        if (columnIndex == TaskConfidenceIndex)
            return (ValueGetter<float>)((ref float dst) => dst = current().TaskConfidence);
        throw new ArgumentOutOfRangeException(nameof(columnIndex));
    }

    public static ValueGetter<T> Cast<T>(Delegate getter, DataViewSchema.Column column) =>
        getter as ValueGetter<T> ?? throw new InvalidOperationException(
            $"Invalid TValue in GetGetter: '{typeof(T)}', expected type: '{column.Type.RawType}' for column '{column.Name}'.");

    /// <summary>Reads features, task and label of the current row of one input row or cursor.</summary>
    internal sealed class RowReader
    {
        private readonly ValueGetter<VBuffer<float>> _features;
        private readonly TaskRouting.Reader _task;
        private readonly Func<object?>? _label;
        private VBuffer<float> _buffer;

        public RowReader(ApdScorer scorer, DataViewRow row, bool labelKeyActive)
        {
            _features = row.GetGetter<VBuffer<float>>(scorer.Features);
            _task = scorer.Routing.CreateReader(row);
            if (labelKeyActive && scorer.Label is { } l) _label = scorer.Model.LabelType.CreateReader(row, l);
        }

        /// <summary>Copies the features to <paramref name="destination"/> and returns the row's task (null: to be
        /// inferred) and label.</summary>
        public (string? Task, object? Label) Read(Span<float> destination)
        {
            _features(ref _buffer);
            _buffer.CopyTo(destination);
            return (_task.Read(), _label?.Invoke());
        }
    }
}
