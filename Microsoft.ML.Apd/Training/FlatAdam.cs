using TorchSharp;
using static TorchSharp.torch;
using Parameter = TorchSharp.Modules.Parameter;

namespace Microsoft.ML.Apd.Engine;

/// <summary>
/// Adam (Kingma &amp; Ba, 2015, in PyTorch's formulation: β₁ = 0.9, β₂ = 0.999, ε = 1e-8 added after the bias
/// correction, no weight decay) over all of a session's parameters at once.
/// <para>
/// The constructor moves every parameter's values into one contiguous buffer and points each parameter, and its
/// gradient, at its slice (autograd accumulates into an existing gradient in place, so backward fills the flat
/// gradient buffer). A step is then six elementwise operations on one tensor instead of about as many per parameter:
/// at APD's sizes the native-call overhead of TorchSharp's per-parameter Adam cost as much as the arithmetic.
/// Parameter groups with their own learning rate (the low-rank factors U, V) are consecutive slices of the buffer;
/// only the last operation of a step runs per group.
/// </para>
/// </summary>
internal sealed class FlatAdam : IDisposable
{
    private const double Beta1 = 0.9, Beta2 = 0.999, Epsilon = 1e-8;
    private readonly Tensor _values, _gradients, _firstMoment, _secondMoment;
    // (start, length) of each group's slice.
    private readonly (long Start, long Count)[] _groups;
    private int _step;

    /// <summary>Takes over the storage of <paramref name="parameters"/> (same device and dtype, float32), one group.</summary>
    public FlatAdam(IReadOnlyList<Parameter> parameters, double learningRate)
        : this([parameters]) => LearningRates[0] = learningRate;

    /// <summary>Takes over the storage of every group's parameters; each group steps at its own <see cref="LearningRates"/>.</summary>
    public FlatAdam(IReadOnlyList<IReadOnlyList<Parameter>> groups)
    {
        var parameters = groups.SelectMany(g => g).ToList();
        ArgumentOutOfRangeException.ThrowIfZero(parameters.Count);
        LearningRates = new double[groups.Count];
        long start = 0;
        _groups = groups.Select(g =>
        {
            long count = g.Sum(p => p.numel());
            var slice = (start, count);
            start += count;
            return slice;
        }).ToArray();
        long total = parameters.Sum(p => p.numel());
        var device = parameters[0].device;
        _values = zeros(total, device: device);
        _gradients = zeros(total, device: device);
        _firstMoment = zeros(total, device: device);
        _secondMoment = zeros(total, device: device);
        using var noGrad = no_grad();
        // The slices' managed wrappers die with the scope; the parameters keep the native views.
        using var scope = NewDisposeScope();
        long offset = 0;
        foreach (var p in parameters)
        {
            long count = p.numel();
            var values = _values.narrow(0, offset, count).view(p.shape);
            values.copy_(p);
            p.set_(values);
            p.grad = _gradients.narrow(0, offset, count).view(p.shape);
            offset += count;
        }
    }

    /// <summary>γ of each group, in the constructor's order, read at every step (the learner sets them from the
    /// schedules before each step).</summary>
    public double[] LearningRates { get; }

    /// <summary>m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²; x ← x − γ (m / (1−β₁ᵗ)) / (√(v / (1−β₂ᵗ)) + ε).</summary>
    public void Step()
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        _step++;
        double firstCorrection = 1 - Math.Pow(Beta1, _step), secondCorrection = 1 - Math.Pow(Beta2, _step);
        // Scalars held for the calls, not converted implicitly (see TensorOwnership): a step runs millions of times.
        using Scalar beta1 = Beta1.ToScalar(), rest1 = (1 - Beta1).ToScalar(), beta2 = Beta2.ToScalar(), rest2 = (1 - Beta2).ToScalar(),
            rootCorrection = Math.Sqrt(secondCorrection).ToScalar(), epsilon = Epsilon.ToScalar();
        _firstMoment.mul_(beta1).add_(_gradients, rest1);
        _secondMoment.mul_(beta2).addcmul_(_gradients, _gradients, rest2);
        var denominator = _secondMoment.sqrt().div_(rootCorrection).add_(epsilon);
        for (int g = 0; g < _groups.Length; g++)
            if (_groups[g] is var (start, count) && count > 0)
            {
                using var step = (-LearningRates[g] / firstCorrection).ToScalar();
                if (_groups.Length == 1) _values.addcdiv_(_firstMoment, denominator, step);
                else _values.narrow(0, start, count).addcdiv_(_firstMoment.narrow(0, start, count), denominator.narrow(0, start, count), step);
            }
    }

    /// <summary>True when every parameter is finite: one reduction over the flat buffer.</summary>
    public bool ValuesAreFinite()
    {
        using var scope = NewDisposeScope();
        return _values.isfinite().all().item<bool>();
    }

    public void Dispose()
    {
        _values.Dispose();
        _gradients.Dispose();
        _firstMoment.Dispose();
        _secondMoment.Dispose();
    }
}
