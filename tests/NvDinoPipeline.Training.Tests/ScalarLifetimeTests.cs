using System.Collections.Immutable;
using System.Reflection;
using System.Reflection.Emit;
using System.Reflection.Metadata;
using System.Reflection.Metadata.Ecma335;
using System.Reflection.PortableExecutable;
using NvDinoPipeline.Model;
using NvDinoPipeline.Ssl.Augmentation;
using NvDinoPipeline.Training.Core;
using static TorchSharp.torch;

namespace NvDinoPipeline.Training.Tests;

/// <summary>
/// A TorchSharp Scalar made from a number on the way into a call (an operator such as <c>x * 0.5</c> or <c>a + b</c>, an
/// implicit conversion, TorchSharp's own <c>AdamW.step</c>) is unreachable while libtorch runs, and a garbage collection
/// started by another thread frees it mid-call: long training runs crashed or failed that way (benchmarks/Training/RESULTS.md).
/// Training code must pass numbers through <see cref="HeldScalars"/>, which holds them until the call returns.
/// </summary>
public sealed class ScalarLifetimeTests
{
    private static readonly Assembly[] TrainingCode = [typeof(HeldScalars).Assembly, typeof(ImageOps).Assembly, typeof(SslTrainer).Assembly];

    [Fact]
    public void Training_code_hands_libtorch_no_number_that_a_garbage_collection_can_free_mid_call()
    {
        var torchSharp = Il.Read(typeof(Tensor).Assembly.Location);
        var creating = torchSharp.MethodsReaching(call => call.Target.StartsWith("Scalar.op_Implicit(", StringComparison.Ordinal)
                                                           || call.Target.StartsWith("ScalarExtensionMethods.ToScalar(", StringComparison.Ordinal));

        var offenders = TrainingCode
            .SelectMany(assembly => Il.Read(assembly.Location).Calls)
            .Where(call => call.Target.StartsWith("Scalar.op_Implicit(", StringComparison.Ordinal) || creating.Contains(call.Target)
                           // Optimizer.step dispatches to C# updates (AdamW's among them) full of numbers passed this way.
                           || call.Target.EndsWith(".step(Func`1<Tensor>)", StringComparison.Ordinal))
            .Select(call => $"{call.Caller} calls {call.Target}")
            .Distinct()
            .Order(StringComparer.Ordinal)
            .ToList();

        Assert.True(offenders.Count == 0, $"{offenders.Count} calls create a Scalar that only a finalizer frees:\n{string.Join("\n", offenders)}");
    }

    [Fact]
    public void Held_scalar_arithmetic_computes_what_TorchSharps_operators_compute()
    {
        using var scope = NewDisposeScope();
        var x = linspace(-3, 3, 25);
        var y = cos(x);
        Assert.True(Same(x.Plus(y), x + y));
        Assert.True(Same(x.Times(0.3), x * 0.3));
        Assert.True(Same(x.DividedBy(7.0), x / 7.0));
        Assert.True(Same(x.SubtractedFrom(1.0), 1.0 - x));
        Assert.True(Same(x.Clamped(-1.0, 2.0), x.clamp(-1.0, 2.0)));
        Assert.True(Same(x.Remainder(1.0), x.remainder(1.0)));
        var integers = arange(0L, 20L);
        Assert.Equal(ScalarType.Int64, integers.Remainder(6).dtype);
        Assert.True(Same(integers.Remainder(6), integers.remainder(6)));
        Assert.True(Same(x.clone().TimesInPlace(0.9).PlusInPlace(y, 0.1), x.clone().mul_(0.9).add_(y, alpha: 0.1)));
    }

    private static bool Same(Tensor a, Tensor b) => a.dtype == b.dtype && a.allclose(b, rtol: 0, atol: 0);

    /// <summary>The calls in an assembly's method bodies, named <c>Type.Method(parameter types)</c>.</summary>
    private sealed class Il
    {
        private static readonly Dictionary<short, OpCode> OpCodesByValue = typeof(OpCodes)
            .GetFields(BindingFlags.Public | BindingFlags.Static)
            .Select(field => (OpCode)field.GetValue(null)!)
            .ToDictionary(code => code.Value);

        public required List<(string Caller, string Target)> Calls { get; init; }

        public static Il Read(string path)
        {
            using var pe = new PEReader(File.OpenRead(path));
            var metadata = pe.GetMetadataReader();
            var signatures = new SignatureNames();
            var calls = new List<(string, string)>();
            foreach (var typeHandle in metadata.TypeDefinitions)
            {
                var type = metadata.GetTypeDefinition(typeHandle);
                foreach (var methodHandle in type.GetMethods())
                {
                    var method = metadata.GetMethodDefinition(methodHandle);
                    if (method.RelativeVirtualAddress == 0)
                        continue;
                    var caller = Name(metadata.GetString(type.Name), metadata.GetString(method.Name), method.DecodeSignature(signatures, null));
                    foreach (var token in CallTokens(pe.GetMethodBody(method.RelativeVirtualAddress).GetILBytes()!))
                    {
                        if (Target(metadata, signatures, MetadataTokens.EntityHandle(token)) is { } target)
                            calls.Add((caller, target));
                    }
                }
            }
            return new Il { Calls = calls };
        }

        /// <summary>Every method that calls a method matching <paramref name="seed"/>, directly or through others (delegates included).</summary>
        public HashSet<string> MethodsReaching(Func<(string Caller, string Target), bool> seed)
        {
            var reached = Calls.Where(seed).Select(call => call.Caller).ToHashSet(StringComparer.Ordinal);
            for (var grew = true; grew;)
            {
                grew = false;
                foreach (var (caller, target) in Calls)
                    grew |= reached.Contains(target) && reached.Add(caller);
            }
            return reached;
        }

        private static IEnumerable<int> CallTokens(byte[] il)
        {
            for (var i = 0; i < il.Length;)
            {
                var value = (short)il[i++];
                if (value == 0xFE)
                    value = unchecked((short)(0xFE00 | il[i++]));
                var code = OpCodesByValue[value];
                if (code == OpCodes.Call || code == OpCodes.Callvirt || code == OpCodes.Newobj || code == OpCodes.Ldftn || code == OpCodes.Ldvirtftn)
                    yield return BitConverter.ToInt32(il, i);
                i += code.OperandType switch
                {
                    OperandType.InlineNone => 0,
                    OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar => 1,
                    OperandType.InlineVar => 2,
                    OperandType.InlineI8 or OperandType.InlineR => 8,
                    OperandType.InlineSwitch => 4 + 4 * BitConverter.ToInt32(il, i),
                    _ => 4,
                };
            }
        }

        private static string? Target(MetadataReader metadata, SignatureNames signatures, EntityHandle handle)
        {
            switch (handle.Kind)
            {
                case HandleKind.MethodDefinition:
                    var definition = metadata.GetMethodDefinition((MethodDefinitionHandle)handle);
                    return Name(metadata.GetString(metadata.GetTypeDefinition(definition.GetDeclaringType()).Name), metadata.GetString(definition.Name),
                        definition.DecodeSignature(signatures, null));
                case HandleKind.MemberReference:
                    var reference = metadata.GetMemberReference((MemberReferenceHandle)handle);
                    if (reference.GetKind() != MemberReferenceKind.Method)
                        return null;
                    var owner = reference.Parent.Kind switch
                    {
                        HandleKind.TypeReference => metadata.GetString(metadata.GetTypeReference((TypeReferenceHandle)reference.Parent).Name),
                        HandleKind.TypeDefinition => metadata.GetString(metadata.GetTypeDefinition((TypeDefinitionHandle)reference.Parent).Name),
                        _ => null,
                    };
                    return owner is null ? null : Name(owner, metadata.GetString(reference.Name), reference.DecodeMethodSignature(signatures, null));
                default:
                    return null;
            }
        }

        private static string Name(string type, string method, MethodSignature<string> signature) =>
            $"{type}.{method}({string.Join(",", signature.ParameterTypes)})";
    }

    private sealed class SignatureNames : ISignatureTypeProvider<string, object?>
    {
        public string GetArrayType(string elementType, ArrayShape shape) => elementType + "[,]";
        public string GetByReferenceType(string elementType) => elementType + "&";
        public string GetFunctionPointerType(MethodSignature<string> signature) => "fnptr";
        public string GetGenericInstantiation(string genericType, ImmutableArray<string> typeArguments) => $"{genericType}<{string.Join(",", typeArguments)}>";
        public string GetGenericMethodParameter(object? genericContext, int index) => "!!" + index;
        public string GetGenericTypeParameter(object? genericContext, int index) => "!" + index;
        public string GetModifiedType(string modifier, string unmodifiedType, bool isRequired) => unmodifiedType;
        public string GetPinnedType(string elementType) => elementType;
        public string GetPointerType(string elementType) => elementType + "*";
        public string GetPrimitiveType(PrimitiveTypeCode typeCode) => typeCode.ToString();
        public string GetSZArrayType(string elementType) => elementType + "[]";
        public string GetTypeFromDefinition(MetadataReader reader, TypeDefinitionHandle handle, byte rawTypeKind) => reader.GetString(reader.GetTypeDefinition(handle).Name);
        public string GetTypeFromReference(MetadataReader reader, TypeReferenceHandle handle, byte rawTypeKind) => reader.GetString(reader.GetTypeReference(handle).Name);
        public string GetTypeFromSpecification(MetadataReader reader, object? genericContext, TypeSpecificationHandle handle, byte rawTypeKind) =>
            reader.GetTypeSpecification(handle).DecodeSignature(this, genericContext);
    }
}
