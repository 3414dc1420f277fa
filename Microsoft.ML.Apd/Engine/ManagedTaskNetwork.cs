using System.Numerics;
using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace Microsoft.ML.Apd.Engine;

/// <summary>
/// One task of a fully-connected APD network with its composed weights θ_t copied into managed arrays, so that a single
/// row (a <c>PredictionEngine.Predict</c>) is scored without allocating any libtorch tensor: for one row, the cost of
/// creating and disposing native tensors is larger than the arithmetic. Immutable and thread-safe; callers bring their
/// own scratch buffers (<see cref="CreateScratch"/>).
/// </summary>
internal sealed class ManagedTaskNetwork : ICachedWeights
{
    private readonly float[][] _weights;   // per layer, then the head: row-major [out, in]
    private readonly float[][] _biases;
    private readonly int[] _inputs, _outputs;

    private ManagedTaskNetwork(float[][] weights, float[][] biases, int[] inputs, int[] outputs)
    {
        _weights = weights;
        _biases = biases;
        _inputs = inputs;
        _outputs = outputs;
    }

    public int ClassCount => _outputs[^1];

    /// <summary>Bytes of the managed arrays.</summary>
    public long Bytes => (_weights.Sum(w => (long)w.Length) + _biases.Sum(b => (long)b.Length)) * sizeof(float);

    /// <summary>Managed arrays only: nothing to release.</summary>
    public void Dispose() { }

    /// <summary>Copies θ_t (as composed for <see cref="ApdNetwork.Forward"/>; fully-connected layers only), b_t and the head.</summary>
    public static ManagedTaskNetwork Create(IReadOnlyList<Tensor> thetas, IReadOnlyList<Tensor> biases, TaskHead head)
    {
        if (thetas.Any(t => t.dim() != 2)) throw new ArgumentException("Fully-connected layers only.", nameof(thetas));
        var weights = thetas.Append(head.Weight).Select(ToArray).ToArray();
        var bias = biases.Append(head.Bias).Select(ToArray).ToArray();
        var shapes = thetas.Append(head.Weight).Select(t => t.shape).ToArray();
        return new ManagedTaskNetwork(weights, bias, shapes.Select(s => (int)s[1]).ToArray(), shapes.Select(s => (int)s[0]).ToArray());
    }

    private static float[] ToArray(Tensor t)
    {
        using var scope = NewDisposeScope();
        return t.detach().to(ScalarType.Float32).cpu().contiguous().data<float>().ToArray();
    }

    /// <summary>Two buffers as long as the widest layer, for <see cref="Logits"/>.</summary>
    public (float[] A, float[] B) CreateScratch()
    {
        int width = Math.Max(_outputs.Max(), _inputs.Max());
        return (new float[width], new float[width]);
    }

    /// <summary>logits = W_head h_L + b_head with h_l = ReLU(θ_l h_{l−1} + b_l), h_0 = <paramref name="features"/>.</summary>
    public void Logits(ReadOnlySpan<float> features, Span<float> logits, (float[] A, float[] B) scratch)
    {
        ReadOnlySpan<float> input = features;
        var (current, next) = scratch;
        for (int l = 0; l < _weights.Length; l++)
        {
            bool isHead = l == _weights.Length - 1;
            Span<float> output = isHead ? logits : current.AsSpan(0, _outputs[l]);
            var weights = _weights[l].AsSpan();
            for (int o = 0; o < _outputs[l]; o++)
            {
                float value = Dot(weights.Slice(o * _inputs[l], _inputs[l]), input) + _biases[l][o];
                output[o] = isHead ? value : Math.Max(value, 0f);
            }
            input = output;
            (current, next) = (next, current);
        }
    }

    private static float Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        var sum = Vector<float>.Zero;
        int i = 0;
        var va = MemoryMarshal.Cast<float, Vector<float>>(a);
        var vb = MemoryMarshal.Cast<float, Vector<float>>(b);
        for (; i < va.Length; i++) sum += va[i] * vb[i];
        float total = Vector.Sum(sum);
        for (i *= Vector<float>.Count; i < a.Length; i++) total += a[i] * b[i];
        return total;
    }
}
