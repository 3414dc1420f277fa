using TorchSharp;
using static TorchSharp.torch;
using Parameter = TorchSharp.Modules.Parameter;

namespace Microsoft.ML.Apd.Engine;

/// <summary>
/// The trainable state while task t is learned: σ of every layer, task t's v_t, τ_t, b_t and head, and (through
/// <see cref="IRetroactiveUpdate"/>) the earlier τ_i, trained with the others (Exact) or solved in closed form
/// (Fast). Earlier masks, biases and heads are not parameters at all, so they cannot move. With a low-rank rank r &gt; 0,
/// every task after the first also trains U_t, V_t of its first layers (<see cref="LowRankAdaptive"/>), at their own
/// learning rate. <see cref="Commit"/> writes the result into the network.
/// </summary>
internal sealed class TaskTrainingSession : IDisposable
{
    private readonly ApdNetwork _network;
    private readonly ApdHyperparameters _hyperparameters;
    private readonly bool _isFirstTask;
    // False on the first task when TrainFirstTaskAdaptive is off: τ_1 stays 0 and is no parameter of the optimizer.
    private readonly bool _trainsAdaptive;
    private bool _committed;

    public TaskTrainingSession(ApdNetwork network, string task, int classCount, ApdHyperparameters hyperparameters, Generator generator)
    {
        _network = network;
        _hyperparameters = hyperparameters;
        _isFirstTask = network.Tasks.Count == 0;
        Task = task;
        var device = network.Device;
        using (no_grad())
        using (NewDisposeScope())
        {
            _trainsAdaptive = !_isFirstTask || hyperparameters.TrainFirstTaskAdaptive;
            foreach (var layer in network.Layers)
            {
                Shared.Add(Trainable(layer.Shared.detach().clone()));
                // As in the authors' code: mask logits and biases drawn like every variable (variance scaling, 1-D
                // fan_in = length), τ_t starts as a copy of σ (also for the first task). The compact options start
                // τ_t at zero, and leave τ_1 at zero, untrained.
                MaskLogits.Add(Trainable(hyperparameters.InitialMaskLogit is double logit
                    ? full([layer.OutputCount], logit, device: device)
                    : VarianceScaling.Sample([layer.OutputCount], layer.OutputCount, generator, device)));
                var adaptive = hyperparameters.AdaptiveStartsAtZero || !_trainsAdaptive ? zeros_like(layer.Shared) : layer.Shared.detach().clone();
                Adaptive.Add(_trainsAdaptive ? Trainable(adaptive) : Fixed(adaptive));
                Biases.Add(Trainable(VarianceScaling.Sample([layer.OutputCount], layer.OutputCount, generator, device)));
            }
            long headInput = network.HeadInputSize;
            HeadWeight = Trainable(VarianceScaling.Sample([classCount, headInput], headInput, generator, device));
            HeadBias = Trainable(VarianceScaling.Sample([classCount], classCount, generator, device));
            // The first task has nothing to adapt from: σ carries it. Later tasks start at U_t V_tᵀ = 0 (U = 0) with V
            // drawn like every variable, so U's gradient is not zero (as LoRA starts).
            int rank = _isFirstTask ? 0 : hyperparameters.LowRankAdaptiveRank;
            foreach (var layer in network.Layers.Take(rank > 0 ? hyperparameters.LowRankAdaptiveLayers : 0))
            {
                // No higher than the layer's own rank: beyond it the factors add parameters and nothing else.
                long fanIn = LowRankAdaptive.FanIn(layer.WeightShape), layerRank = Math.Min(rank, Math.Min(layer.OutputCount, fanIn));
                LowRank.Add((Trainable(zeros([layer.OutputCount, layerRank], device: device)),
                    Trainable(VarianceScaling.Sample([fanIn, layerRank], fanIn, generator, device))));
            }
        }
        Retroactive = RetroactiveUpdate.Create(network, hyperparameters);
    }

    /// <summary>A leaf parameter outside every dispose scope; the temporaries that built it die with the caller's scope.</summary>
    private static Parameter Trainable(Tensor value)
    {
        var parameter = new Parameter(value.detach(), requires_grad: true);
        parameter.DetachFromDisposeScope();
        return parameter;
    }

    /// <summary>Like <see cref="Trainable"/>, without gradient: a value the objective reads and nothing trains.</summary>
    private static Parameter Fixed(Tensor value)
    {
        var parameter = new Parameter(value.detach(), requires_grad: false);
        parameter.DetachFromDisposeScope();
        return parameter;
    }

    public string Task { get; }
    /// <summary>σ per layer.</summary>
    public List<Parameter> Shared { get; } = new();
    /// <summary>v_t per layer.</summary>
    public List<Parameter> MaskLogits { get; } = new();
    /// <summary>τ_t per layer (dense while training; fixed at 0 when the first task trains no τ).</summary>
    public List<Parameter> Adaptive { get; } = new();
    /// <summary>The τ the optimizer trains: τ_t (unless fixed at 0) and, with the dense retroactive update, the earlier τ_i.</summary>
    private IEnumerable<Parameter> TrainedAdaptive => (_trainsAdaptive ? Adaptive : []).Concat(Retroactive.Parameters);
    /// <summary>b_t per layer.</summary>
    public List<Parameter> Biases { get; } = new();
    public Parameter HeadWeight { get; }
    public Parameter HeadBias { get; }
    /// <summary>U_t [out, r] and V_t [fan-in, r] of the first LowRankAdaptiveLayers layers; none on the first task or
    /// with rank 0.</summary>
    public List<(Parameter Left, Parameter Right)> LowRank { get; } = new();
    public IRetroactiveUpdate Retroactive { get; }

    private IEnumerable<Parameter> LowRankParameters => LowRank.SelectMany(factors => new[] { factors.Left, factors.Right });

    /// <summary>Everything trained at the learning rate γ.</summary>
    private IEnumerable<Parameter> FullRateParameters
        => Shared.Concat(MaskLogits).Concat(_trainsAdaptive ? Adaptive : []).Concat(Biases).Append(HeadWeight).Append(HeadBias)
            .Concat(Retroactive.Parameters);

    public IEnumerable<Parameter> TrainableParameters => FullRateParameters.Concat(LowRankParameters);

    /// <summary>What the optimizer steps, in two groups at the rates of <see cref="LearningRatesAt"/>: everything at γ,
    /// then U_t and V_t.</summary>
    public IReadOnlyList<IReadOnlyList<Parameter>> OptimizerGroups => [FullRateParameters.ToList(), LowRankParameters.ToList()];

    /// <summary>The learning rates of <see cref="OptimizerGroups"/> at step <paramref name="step"/> of epoch
    /// <paramref name="epoch"/>: γ by the LearningRateSchedule, and for U_t, V_t γ × LowRankLearningRateMultiplier by the
    /// LowRankLearningRateSchedule (they start at a zero product and must reach a dense change within the task's steps,
    /// then settle instead of ending a large step away).</summary>
    public double[] LearningRatesAt(int epoch, int step, int stepsPerEpoch)
        => [_hyperparameters.LearningRateAt(epoch, step, stepsPerEpoch), _hyperparameters.LowRankLearningRateAt(epoch, step, stepsPerEpoch)];

    /// <summary>Logits of task t with θ_t = σ ⊙ M_t + τ_t [+ U_t V_tᵀ] (τ_t dense, not thresholded: thresholding is for storage).</summary>
    public Tensor Logits(Tensor features)
        => _network.ForwardWith(features, l => (_network.Layers[l].Compose(Shared[l], MaskLogits[l], AdaptiveOf(l)), Biases[l]), HeadWeight, HeadBias);

    /// <summary>The adaptive part of layer l being trained: τ_t, plus U_t V_tᵀ when the layer has one.</summary>
    private Tensor AdaptiveOf(int l)
    {
        if (l >= LowRank.Count) return Adaptive[l];
        using var one = 1.ToScalar(); // held for the call (see TensorOwnership): every step
        return Adaptive[l].add(LowRankAdaptive.Product(LowRank[l].Left, LowRank[l].Right, _network.Layers[l].WeightShape), one);
    }

    /// <summary>The full APD objective for one batch as one differentiable expression (see <see cref="ApdObjective"/>):
    /// the reference <see cref="Backward"/>'s gradients are checked against.</summary>
    public Tensor Loss(Tensor features, Tensor labels)
    {
        var h = _hyperparameters;
        var loss = ApdObjective.TaskLoss(Logits(features), labels)
            + ApdObjective.AdaptiveSparsity(Adaptive, h.SparsityStrength)
            + ApdObjective.WeightDecay(Adaptive.Concat(MaskLogits), h.WeightDecay)
            + Retroactive.Penalty(Shared);
        if (h.MaskSparsityStrength != 0) loss += ApdObjective.MaskSparsity(MaskLogits, h.MaskSparsityStrength);
        if (_isFirstTask) loss += ApdObjective.WeightDecay(Shared, h.WeightDecay);
        return loss;
    }

    /// <summary>
    /// Sets every trainable parameter's gradient to GradientScale × ∇ of the APD objective on a batch (the authors
    /// scale gradients by 10) and returns the task loss, the batch's cross-entropy (scalar, caller's scope). The task
    /// loss goes through autograd, multiplied by the scale before backward so no extra pass scales its gradients; the
    /// sparsity and weight-decay terms add their elementwise gradients in place and the retroactive term its own, so
    /// none of them is evaluated: training needs their gradients only.
    /// </summary>
    public Tensor Backward(Tensor features, Tensor labels)
    {
        var h = _hyperparameters;
        double scale = h.GradientScale;
        foreach (var p in TrainableParameters) p.grad?.zero_();
        var taskLoss = ApdObjective.TaskLoss(Logits(features), labels);
        using (var gradientScale = scale.ToScalar()) // held for the call (see TensorOwnership)
            taskLoss.mul(gradientScale).backward();
        Retroactive.AddGradients(Shared, scale);
        using var noGrad = no_grad();
        var adaptive = _trainsAdaptive ? Adaptive : [];
        ApdObjective.AddL1Gradient(adaptive, h.SparsityStrength, scale);
        ApdObjective.AddSquaredL2Gradient(adaptive.Concat(MaskLogits), h.WeightDecay, scale);
        if (h.MaskSparsityStrength != 0) ApdObjective.AddL1Gradient(MaskLogits, h.MaskSparsityStrength, scale);
        if (_isFirstTask) ApdObjective.AddSquaredL2Gradient(Shared, h.WeightDecay, scale);
        return taskLoss.detach();
    }

    /// <summary>One optimisation step on a batch: <see cref="Backward"/>, the optimizer, then (when ρ &gt; 0) the proximal
    /// step of every trained τ. Returns the task loss before the step (a scalar tensor in the caller's scope).</summary>
    public Tensor Step(FlatAdam optimizer, Tensor features, Tensor labels)
    {
        var loss = Backward(features, labels);
        optimizer.Step();
        if (_hyperparameters.ProximalStrength > 0)
            ApdObjective.ShrinkProximally(TrainedAdaptive, optimizer.LearningRates[0] * _hyperparameters.ProximalStrength); // γ of τ's group
        return loss;
    }

    /// <summary>Moves the trained values into the network: new σ, task t's slots (τ_t thresholded and sparse), its
    /// head, its model of its inputs (null when it saw no rows: zero epochs), and the retroactively updated τ_i of
    /// earlier tasks (thresholded again).</summary>
    public void Commit(TaskInputModel? inputs)
    {
        if (_committed) throw new InvalidOperationException("Already committed.");
        _committed = true;
        double threshold = _hyperparameters.SparsityStrength;
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var slots = new List<TaskSlot>();
        for (int l = 0; l < _network.Layers.Count; l++)
        {
            _network.Layers[l].ReplaceShared(TensorOwnership.Copy(Shared[l]));
            slots.Add(new TaskSlot(TensorOwnership.Copy(MaskLogits[l]), TensorOwnership.Copy(Biases[l]),
                SparseAdaptive.FromDense(Adaptive[l], threshold, _hyperparameters.HalfPrecisionStorage),
                lowRank: l < LowRank.Count ? StoredLowRank(LowRank[l]) : null));
        }
        Retroactive.Commit(_network);
        _network.AddTask(Task, new TaskHead(TensorOwnership.Copy(HeadWeight), TensorOwnership.Copy(HeadBias)), slots, inputs);
    }

    /// <summary>The trained U_t V_tᵀ as stored: its leading components that keep LowRankKeptEnergy of it (none when it
    /// is 0), rounded to float16 with half-precision storage (the model Fit returns then computes with exactly the
    /// values a saved file holds).</summary>
    private LowRankAdaptive? StoredLowRank((Parameter Left, Parameter Right) factors)
    {
        using var scope = NewDisposeScope();
        if (LowRankAdaptive.Truncated(factors.Left, factors.Right, _hyperparameters.LowRankKeptEnergy) is not var (left, right))
            return null;
        Tensor Stored(Tensor factor) => TensorOwnership.Keep(() => _hyperparameters.HalfPrecisionStorage ? SparseAdaptive.RoundToHalf(factor) : factor.clone());
        return new LowRankAdaptive(Stored(left), Stored(right));
    }

    public void Dispose()
    {
        foreach (var p in Shared.Concat(MaskLogits).Concat(Adaptive).Concat(Biases).Concat(LowRankParameters)) p.Dispose();
        HeadWeight.Dispose();
        HeadBias.Dispose();
        Retroactive.Dispose();
    }
}
