using static TorchSharp.torch;

namespace Microsoft.ML.Apd.Engine;

/// <summary>
/// A task's model of its own inputs: the per-feature mean μ_t and variance v_t of its training rows, read as a
/// diagonal Gaussian. It routes a row without a task id (<see cref="TaskInference"/>): the task's networks cannot tell
/// whose a row is — each is confident on every task's rows, since they share σ — but the rows themselves can (a pixel
/// permutation moves Fashion-MNIST's bright centre elsewhere; different products have different images).
/// 2 · InputSize numbers per task.
/// </summary>
internal sealed class TaskInputModel : IDisposable
{
    /// <summary>Each variance is raised by this share of the mean variance over the features, so a feature that is
    /// constant in a task's training rows (a border pixel) penalises a row that differs there without dominating
    /// every other feature, whatever the features' scale.</summary>
    internal const double VarianceFloorShare = 0.1;

    public TaskInputModel(Tensor mean, Tensor variance)
    {
        Mean = mean;
        Variance = variance;
    }

    /// <summary>μ_t, [InputSize] float32.</summary>
    public Tensor Mean { get; }
    /// <summary>v_t with the floor added, [InputSize] float32, positive and finite.</summary>
    public Tensor Variance { get; }

    /// <summary>log N(x; μ_t, diag v_t) up to the constant −(InputSize/2) log 2π, for features [N, InputSize]: [N]
    /// float64 (squares of large features overflow float32).</summary>
    public Tensor LogLikelihood(Tensor features)
    {
        using var scope = NewDisposeScope();
        var x = features.to(ScalarType.Float64, Mean.device);
        var variance = Variance.to(ScalarType.Float64);
        var distance = (x - Mean.to(ScalarType.Float64)).square().div(variance).sum(1);
        return (-0.5 * (distance + variance.log().sum())).MoveToOuterDisposeScope();
    }

    private readonly SharedOwners _owners = new();

    /// <summary>The same model for another network: it is immutable, so both hold this object (see <see cref="SharedOwners"/>).</summary>
    public TaskInputModel Share()
    {
        _owners.Add();
        return this;
    }

    public void Dispose()
    {
        if (!_owners.Release()) return;
        Mean.Dispose();
        Variance.Dispose();
    }

    /// <summary>Sums a task's training rows batch by batch (float64, so millions of rows lose no precision) and turns
    /// them into a <see cref="TaskInputModel"/> once every row has been seen.</summary>
    internal sealed class Accumulator(int inputSize, Device device) : IDisposable
    {
        private Tensor _sum = zeros(inputSize, ScalarType.Float64, device);
        private Tensor _sumOfSquares = zeros(inputSize, ScalarType.Float64, device);
        private long _rows;

        /// <summary>Adds features [b, InputSize].</summary>
        public void Add(Tensor features)
        {
            Tensor sum, sumOfSquares;
            using (var scope = NewDisposeScope())
            {
                var x = features.to(ScalarType.Float64, _sum.device);
                sum = (_sum + x.sum(dim: 0)).DetachFromDisposeScope();
                sumOfSquares = (_sumOfSquares + x.square().sum(dim: 0)).DetachFromDisposeScope();
            }
            _sum.Dispose();
            _sumOfSquares.Dispose();
            (_sum, _sumOfSquares) = (sum, sumOfSquares);
            _rows += features.shape[0];
        }

        /// <summary>μ = Σx / n and v = Σx² / n − μ² (at least 0) plus the floor, as float32 (a variance beyond
        /// float32's range is stored as its largest value).</summary>
        public TaskInputModel ToModel()
        {
            if (_rows == 0) throw new InvalidOperationException("No rows were added.");
            using var scope = NewDisposeScope();
            var mean = _sum / _rows;
            var variance = (_sumOfSquares / _rows - mean.square()).clamp_min(0);
            // The smallest floor stays a normal float32, so log v_t is finite even when every feature is constant.
            variance = variance + Math.Max(VarianceFloorShare * variance.mean().item<double>(), 1e-30);
            return new TaskInputModel(mean.to(ScalarType.Float32).DetachFromDisposeScope(),
                variance.to(ScalarType.Float32).nan_to_num(posinf: float.MaxValue).DetachFromDisposeScope());
        }

        public void Dispose()
        {
            _sum.Dispose();
            _sumOfSquares.Dispose();
        }
    }
}
