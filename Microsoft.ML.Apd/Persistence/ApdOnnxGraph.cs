using Microsoft.ML.Apd.Engine;
using Microsoft.ML.Data;
using Microsoft.ML.Model.OnnxConverter;
using TorchSharp;

namespace Microsoft.ML.Apd.Persistence;

/// <summary>
/// Writes a bound <see cref="ApdScorer"/> into the ONNX graph ML.NET's <c>ConvertToOnnx</c> is building (see
/// MLNetInternals.cs for why this goes through ML.NET's internal <see cref="OnnxContext"/>). The graph computes what
/// <see cref="ApdScorer.Score"/> computes:
/// <list type="bullet">
/// <item>each task's weights composed from what the model stores, θ_t = σ ⊙ sigmoid(v_t) + (σ̃_{g(t)} + τ_t), with σ
/// once per layer and σ̃, τ as sparse initializers (gaps between flat positions, float16 bit patterns when exact, as
/// the .zip stores them) scattered into zeros, so the file grows with the non-zeros like the .zip; ONNX Runtime folds
/// these constant nodes once, when it loads the model;</item>
/// <item>the task's network (conv → ReLU → 2×2 max-pool blocks, fully-connected → ReLU layers, its head) and a softmax:
/// <c>Score</c>;</item>
/// <item>the arg-max looked up in a table of label values in the label's own type: <c>PredictedLabel</c> (a row
/// whose probabilities hold a NaN gets NaN scores and the missing label, as in Transform);</item>
/// <item>with fixed routing and the label among the inputs, the label as a key of the task's classes (as
/// <see cref="ApdTransformer.ForTask"/> re-exposes it);</item>
/// <item>with routing by task id: the id mapped to a task index (<c>LabelEncoder</c>), each task's rows gathered,
/// scored and scattered back. <c>Score</c> is then [N, the most classes of any task]: a task with fewer classes has
/// probability 0 in the slots past its own. A row whose id is empty or not a task of the model gets NaN scores and the
/// label type's missing value (Transform would infer its task, or throw), and TaskConfidence NaN.</item>
/// </list>
/// Inferred routing (several tasks, no task id column) is not exported: <see cref="Save"/> throws and says what to do.
/// </summary>
internal sealed class ApdOnnxGraph
{
    /// <summary>ScatterND and GatherND, used for sparse τ and for routing, appeared in ONNX opset 11.</summary>
    public const int MinimumOpSet = 11;

    private const string MlDomain = "ai.onnx.ml";
    private readonly OnnxContext _ctx;
    private readonly ApdScorer _scorer;
    private readonly ApdNetwork _network;
    private readonly LabelColumnType _labelType;
    private readonly Dictionary<(int Layer, int Cohort), string> _shared = new();
    private readonly Dictionary<(int Layer, int Cohort, int Group), string> _locallyShared = new();
    private (string Scale, string Lead)? _halfTables;

    private ApdOnnxGraph(OnnxContext ctx, ApdScorer scorer)
    {
        _ctx = ctx;
        _scorer = scorer;
        _network = scorer.Model.Network;
        _labelType = scorer.Model.LabelType;
    }

    /// <summary>Adds the scorer's output columns to <paramref name="ctx"/>'s graph.</summary>
    /// <exception cref="NotSupportedException">Inferred routing, or a feature column that no exported step computes.</exception>
    public static void Save(OnnxContext ctx, ApdScorer scorer)
    {
        var model = scorer.Model;
        if (scorer.Routing.Kind == TaskRoutingKind.Inferred)
            throw new NotSupportedException(
                $"Cannot export this APD model to ONNX: it has {model.Tasks.Count} tasks and the input has no task id column '{model.TaskIdColumnName}', " +
                "so Transform infers each row's task, which the ONNX graph does not do. Export model.ForTask(task) to score one task, " +
                $"or give the input a text column '{model.TaskIdColumnName}' to export every task, routed by each row's task id.");
        if (!ctx.ContainsColumn(scorer.Features.Name))
            throw new NotSupportedException(
                $"Cannot export this APD model to ONNX: its feature column '{scorer.Features.Name}' is computed by an earlier step that " +
                "ML.NET cannot export to ONNX (MLContext.Log names the step where ML.NET stopped).");
        ctx.CheckOpSetVersion(MinimumOpSet, nameof(ApdTransformer));
        new ApdOnnxGraph(ctx, scorer).Build();
    }

    private void Build()
    {
        var model = _scorer.Model;
        string features = _ctx.GetVariableName(_scorer.Features.Name);
        // Read before the outputs are added: the label-key output takes over the label column's name.
        string? label = _scorer.Label is { } l ? _ctx.GetVariableName(l.Name) : null;

        string score, labelIndex;
        string[] tasks;
        if (_scorer.Routing.FixedTask is { } task)
        {
            tasks = [task];
            (score, labelIndex) = Predict(TaskProbabilities(features, task), offset: 1); // table entry 0 is the missing value
        }
        else
        {
            tasks = model.Tasks.ToArray();
            (score, labelIndex) = Routed(features, _ctx.GetVariableName(_scorer.Routing.TaskColumn!.Value.Name), tasks);
        }

        var schema = _scorer.OutputSchema;
        Output(schema[_scorer.PredictedLabelIndex], Op("Gather", [LabelTable(tasks), labelIndex], n => n.AddAttribute("axis", 0L)));
        Output(schema[_scorer.ScoreIndex], score);
        if (_scorer.LabelKeyIndex >= 0)
            Output(schema[_scorer.LabelKeyIndex], LabelKey(label!, _scorer.FixedLabels!));
    }

    // ── routing ────────────────────────────────────────────────────────────────────────────────────────────────

    /// <summary>Score [N, max classes] and the label table index [N, 1] of rows routed by their task id.</summary>
    private (string Score, string LabelIndex) Routed(string features, string taskId, string[] tasks)
    {
        int width = tasks.Max(t => _network.ClassCount(t));
        string taskIndex = Op("LabelEncoder", [taskId], n =>
        {
            n.AddAttribute("keys_strings", tasks);
            n.AddAttribute("values_int64s", Enumerable.Range(0, tasks.Length).Select(i => (long)i));
            n.AddAttribute("default_int64", -1L);
        }, MlDomain);
        string rowShape = Op("Shape", [taskIndex]); // [N, 1]
        string score = Op("Expand", [Floats(Enumerable.Repeat(float.NaN, width).ToArray(), [1, width]), rowShape]);
        string labelIndex = Op("Expand", [Longs([0], [1, 1]), rowShape]);
        long offset = 1; // table entry 0 is the missing value
        for (int t = 0; t < tasks.Length; t++)
        {
            // rows of task t as [n_t, 1] indices: gathered from the features, scattered back into the outputs
            string isTask = Op("Reshape", [Op("Equal", [taskIndex, Long(t)]), Longs([-1], [1])]);
            string rows = Op("Transpose", [Op("NonZero", [isTask])], n => n.AddAttribute("perm", new long[] { 1, 0 }));
            string probabilities = TaskProbabilities(Op("GatherND", [features, rows]), tasks[t]);
            int classes = _network.ClassCount(tasks[t]);
            // zeros past the task's classes: never the arg-max, since a softmax row holds a positive maximum
            string padded = classes == width ? probabilities
                : Op("Pad", [probabilities, Longs([0, 0, 0, width - classes], [4])]);
            var (taskScore, taskLabelIndex) = Predict(padded, offset);
            score = Op("ScatterND", [score, rows, taskScore]);
            labelIndex = Op("ScatterND", [labelIndex, rows, taskLabelIndex]);
            offset += classes;
        }

        var schema = _scorer.OutputSchema;
        if (_scorer.PredictedTaskIndex >= 0)
        {
            // A routed row's task is the one it names; its confidence 1 (NaN when the id is not a task: not scored).
            Output(schema[_scorer.PredictedTaskIndex], Op("Identity", [taskId]));
            string known = Op("Greater", [taskIndex, Long(-1)]);
            Output(schema[_scorer.TaskConfidenceIndex], Op("Where", [known, Floats([1f], [1]), Floats([float.NaN], [1])]));
        }
        return (score, labelIndex);
    }

    /// <summary>
    /// Score and label table index [n, 1] (<paramref name="offset"/> + arg-max) of one task's probabilities. As
    /// Transform does, a row that cannot be scored (a NaN among its probabilities: non-finite features, or an overflow)
    /// gets NaN for every score and table entry 0, the missing value.
    /// </summary>
    private (string Score, string LabelIndex) Predict(string probabilities, long offset)
    {
        string unscorable = Op("IsNaN", [Op("ReduceSum", [probabilities], n =>
        {
            n.AddAttribute("axes", new long[] { 1 });
            n.AddAttribute("keepdims", 1L);
        })]);
        string score = Op("Where", [unscorable, Floats([float.NaN], [1]), probabilities]);
        string labelIndex = Op("Where", [unscorable, Long(0), Op("Add", [ArgMax(probabilities), Long(offset)])]);
        return (score, labelIndex);
    }

    // ── one task's network ─────────────────────────────────────────────────────────────────────────────────────

    /// <summary>Class probabilities [n, classes] of <paramref name="task"/> for features [n, InputSize].</summary>
    private string TaskProbabilities(string features, string task)
    {
        var architecture = _network.Architecture;
        string x = features;
        if (_network.ConvolutionLayerCount > 0)
        {
            var image = architecture.Image!;
            x = Op("Reshape", [x, Longs([-1, image.Channels, image.Height, image.Width], [4])]);
        }
        var layers = _network.Layers;
        for (int l = 0; l < layers.Count; l++)
        {
            if (l == _network.ConvolutionLayerCount && l > 0) x = Flatten(x);
            var layer = layers[l];
            string theta = Theta(l, task);
            string bias = Floats(layer.Slots[task].Bias, [layer.OutputCount]);
            x = layer is DecomposedConv2d
                ? Op("MaxPool", [Op("Relu", [Op("Conv", [x, theta, bias])])], n =>
                {
                    n.AddAttribute("kernel_shape", new long[] { 2, 2 });
                    n.AddAttribute("strides", new long[] { 2, 2 });
                })
                : Op("Relu", [Gemm(x, theta, bias)]);
        }
        if (layers.Count == _network.ConvolutionLayerCount && layers.Count > 0) x = Flatten(x);
        var head = _network.HeadOf(task);
        string logits = Gemm(x, Floats(head.Weight, head.Weight.shape), Floats(head.Bias, head.Bias.shape));
        return Op("Softmax", [logits], n => n.AddAttribute("axis", 1L));
    }

    /// <summary>θ_t of layer <paramref name="l"/>: σ ⊙ sigmoid(v_t) + (σ̃_{g(t)} + τ_t + U_t V_tᵀ), as <see cref="DecomposedLayer.ComposeStored"/>.</summary>
    private string Theta(int l, string task)
    {
        var layer = _network.Layers[l];
        var slot = layer.Slots[task];
        // One initializer per σ (the live one, key −1, and each frozen cohort's) and per σ̃, whatever the tasks using it.
        int cohort = slot.FrozenOn ?? -1;
        if (!_shared.TryGetValue((l, cohort), out string? sigma))
            _shared[(l, cohort)] = sigma = Floats(layer.SharedOf(slot), layer.WeightShape,
                slot.FrozenOn is int c ? $"_apd_{layer.Kind}{l + 1}_sigma_frozen{c}" : $"_apd_{layer.Kind}{l + 1}_sigma");
        string mask = Op("Sigmoid", [Floats(slot.MaskLogits, layer.MaskShape)]);
        string masked = Op("Mul", [sigma, mask]);

        string? adaptive = Dense(slot.Adaptive);
        if (slot.Group is int g && layer.LocallySharedOf(slot) is { } local)
        {
            if (!_locallyShared.TryGetValue((l, cohort, g), out string? shared) && Dense(local) is { } dense)
                _locallyShared[(l, cohort, g)] = shared = dense;
            if (shared is not null) adaptive = adaptive is null ? shared : Op("Add", [shared, adaptive]);
        }
        if (slot.LowRank is { } lowRank)
        {
            // U [out, r] · Vᵀ [r, fan-in], reshaped to the weight shape: r·(out + fan-in) values in the file.
            using var transposed = lowRank.Right.t();
            string product = Op("MatMul", [Floats(lowRank.Left, lowRank.Left.shape), Floats(transposed, transposed.shape)]);
            string dense = Op("Reshape", [product, Longs(layer.WeightShape, [layer.WeightShape.Length])]);
            adaptive = adaptive is null ? dense : Op("Add", [adaptive, dense]);
        }
        return adaptive is null ? masked : Op("Add", [masked, adaptive]);
    }

    /// <summary>
    /// A sparse tensor made dense in the graph (zeros, then its values scattered in), or null when it is all zeros.
    /// Stored compactly, as the .zip stores it: positions as gaps (small varints in the file, summed back with
    /// CumSum), values as float16 bit patterns when they are all exactly float16 (decoded by <see cref="FromHalfBits"/>).
    /// </summary>
    private string? Dense(SparseAdaptive sparse)
    {
        if (sparse.NonZeros == 0) return null;
        if (sparse.DenseSize > int.MaxValue)
            throw new NotSupportedException($"Cannot export to ONNX: a weight tensor of {sparse.DenseSize:N0} elements exceeds int32 positions.");
        long[] positions = sparse.Indices.to(torch.CPU).data<long>().ToArray();
        float[] values = sparse.Values.to(torch.CPU).data<float>().ToArray();
        long[] count = [positions.Length];
        var gaps = positions.Select((p, i) => (int)(i == 0 ? p : p - positions[i - 1]));
        string summed = Op("CumSum", [_ctx.AddInitializer(gaps, typeof(int), count, "_apd_gaps"), Long(0)]);
        string indices = Op("Unsqueeze", [Op("Cast", [summed], n => n.AddAttribute("to", (long)OnnxType.Int64))],
            n => n.AddAttribute("axes", new long[] { 1 }));
        string valuesVariable = values.All(v => (float)(Half)v == v)
            ? FromHalfBits(_ctx.AddInitializer(values.Select(v => (int)BitConverter.HalfToUInt16Bits((Half)v)), typeof(ushort), count, "_apd_half_bits"))
            : Floats(values, count);
        string zeros = Op("ConstantOfShape", [Longs([sparse.DenseSize], [1])]); // float zeros by default
        string flat = Op("ScatterND", [zeros, indices, valuesVariable]);
        return Op("Reshape", [flat, Longs(sparse.Shape, [sparse.Shape.Length])]);
    }

    /// <summary>
    /// Floats from float16 bit patterns (uint16), exactly: the top 6 bits (sign, exponent) pick a scale ±2^(max(e,1)−25)
    /// and the implicit leading 1024 of normal numbers from two 64-entry tables; value = (mantissa + lead) · scale.
    /// (ONNX has float16 tensors, but ML.NET's OnnxContext cannot write them.)
    /// </summary>
    private string FromHalfBits(string bits)
    {
        _halfTables ??= (
            Floats(Enumerable.Range(0, 64).Select(h => (h >= 32 ? -1 : 1) * MathF.Pow(2, Math.Max(h % 32, 1) - 25)).ToArray(), [64], "_apd_half_scale"),
            Floats(Enumerable.Range(0, 64).Select(h => h % 32 == 0 ? 0f : 1024f).ToArray(), [64], "_apd_half_lead"));
        string asInt = Op("Cast", [bits], n => n.AddAttribute("to", (long)OnnxType.Int32));
        string high = Op("Div", [asInt, Int32(1024)]);
        string mantissa = Op("Cast", [Op("Sub", [asInt, Op("Mul", [high, Int32(1024)])])], n => n.AddAttribute("to", (long)OnnxType.Float));
        string lead = Op("Gather", [_halfTables.Value.Lead, high], n => n.AddAttribute("axis", 0L));
        string scale = Op("Gather", [_halfTables.Value.Scale, high], n => n.AddAttribute("axis", 0L));
        return Op("Mul", [Op("Add", [mantissa, lead]), scale]);
    }

    // ── labels ─────────────────────────────────────────────────────────────────────────────────────────────────

    /// <summary>The missing value, then every task's label values in class order, in the label's ONNX type.</summary>
    private string LabelTable(string[] tasks)
    {
        var values = new List<object> { _labelType.Missing };
        foreach (var task in tasks) values.AddRange(_scorer.Model.LabelSets[task].Values);
        long[] dims = [values.Count];
        const string name = "_apd_labels";
        var raw = _labelType.RawType;
        if (_labelType.IsText) return _ctx.AddInitializer(values.Select(v => (string)v), dims, name);
        if (raw == typeof(bool)) return _ctx.AddInitializer(values.Select(v => (bool)v), dims, name);
        if (raw == typeof(float)) return _ctx.AddInitializer(values.Select(v => (float)v), dims, name);
        if (raw == typeof(double)) return _ctx.AddInitializer(values.Select(v => (double)v), dims, name);
        // integers and keys: canonical long (signed, uint) or ulong (keys), stored in the column's own width
        var integers = values.Select(v => v is ulong u ? (long)u : (long)v).ToArray();
        if (raw == typeof(long)) return _ctx.AddInitializer(integers, dims, name);
        if (raw == typeof(uint) || raw == typeof(ulong))
            return _ctx.AddInitializer(integers.Select(v => (ulong)v), raw == typeof(ulong), dims, name);
        return _ctx.AddInitializer(integers.Select(v => (int)v), raw, dims, name); // sbyte, byte, short, ushort, int
    }

    /// <summary>The label input as a key of the task's classes (1-based; 0 for a label outside the task or missing).</summary>
    private string LabelKey(string label, TaskLabelSet classes)
    {
        string key;
        if (_labelType.IsText)
        {
            key = Op("LabelEncoder", [label], n =>
            {
                n.AddAttribute("keys_strings", classes.Values.Select(v => (string)v));
                n.AddAttribute("values_int64s", Enumerable.Range(1, classes.Count).Select(i => (long)i));
                n.AddAttribute("default_int64", 0L);
            }, MlDomain);
        }
        else
        {
            // Every other label type compares exactly as double; [N, C] matches, times 1..C, max over C.
            string asDouble = Op("Cast", [label], n => n.AddAttribute("to", (long)OnnxType.Double));
            string table = _ctx.AddInitializer(classes.Values.Select(ToDouble), [classes.Count], "_apd_classes");
            string matches = Op("Cast", [Op("Equal", [asDouble, table])], n => n.AddAttribute("to", (long)OnnxType.Float));
            string keys = Floats(Enumerable.Range(1, classes.Count).Select(i => (float)i).ToArray(), [classes.Count]);
            string best = Op("ReduceMax", [Op("Mul", [matches, keys])], n =>
            {
                n.AddAttribute("axes", new long[] { 1 });
                n.AddAttribute("keepdims", 1L);
            });
            key = best;
        }
        return Op("Cast", [key], n => n.AddAttribute("to", (long)OnnxType.UInt32));
    }

    private static double ToDouble(object value) => value switch
    {
        bool b => b ? 1 : 0,
        float f => f,
        double d => d,
        ulong u => u,
        _ => (long)value,
    };

    // ── graph helpers ──────────────────────────────────────────────────────────────────────────────────────────

    /// <summary>Maps output column <paramref name="column"/> to <paramref name="variable"/> (ML.NET then exposes it under the column's name).</summary>
    private void Output(DataViewSchema.Column column, string variable)
    {
        string output = _ctx.AddIntermediateVariable(column.Type, column.Name);
        _ctx.CreateNode("Identity", variable, output, _ctx.GetNodeName("Identity"), "");
    }

    /// <summary>One node with one output; returns the output's name.</summary>
    private string Op(string opType, string[] inputs, Action<OnnxNode>? attributes = null, string domain = "")
    {
        string output = _ctx.AddIntermediateVariable(null, "_apd_" + opType, skip: true);
        var node = _ctx.CreateNode(opType, inputs, [output], _ctx.GetNodeName("Apd" + opType), domain);
        attributes?.Invoke(node);
        return output;
    }

    private string Gemm(string x, string weight, string bias) => Op("Gemm", [x, weight, bias], n => n.AddAttribute("transB", 1L));

    private string Flatten(string x) => Op("Flatten", [x], n => n.AddAttribute("axis", 1L));

    private string ArgMax(string probabilities) => Op("ArgMax", [probabilities], n =>
    {
        n.AddAttribute("axis", 1L);
        n.AddAttribute("keepdims", 1L);
    });

    private string Floats(torch.Tensor tensor, long[] dims, string name = "_apd_weights")
        => Floats(tensor.to(torch.CPU).to(torch.ScalarType.Float32).contiguous().data<float>().ToArray(), dims, name);

    private string Floats(float[] values, long[] dims, string name = "_apd_floats") => _ctx.AddInitializer(values, dims, name);

    private string Longs(long[] values, long[] dims) => _ctx.AddInitializer(values, dims, "_apd_shape");

    private string Long(long value) => _ctx.AddInitializer(value, "_apd_int64");

    private string Int32(int value) => _ctx.AddInitializer([value], typeof(int), [1], "_apd_int32");

    /// <summary>ONNX TensorProto data types used in Cast.</summary>
    private enum OnnxType
    {
        Float = 1,
        Int32 = 6,
        Int64 = 7,
        Double = 11,
        UInt32 = 12,
    }
}
