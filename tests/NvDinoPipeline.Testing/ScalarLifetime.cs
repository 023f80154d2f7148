using System.Collections.Immutable;
using System.Reflection;
using System.Reflection.Emit;
using System.Reflection.Metadata;
using System.Reflection.Metadata.Ecma335;
using System.Reflection.PortableExecutable;

namespace NvDinoPipeline.Testing;

/// <summary>
/// Finds, in compiled code, the calls that hand libtorch a TorchSharp Scalar which nothing holds during the call: an
/// implicit conversion from a number, a TorchSharp method that makes one inside (operators such as <c>x * 0.5</c> or
/// <c>a + b</c>, <c>torch.arange(n)</c>), or an optimizer's <c>step</c>. Such a Scalar is freed by its finalizer, and a
/// garbage collection started by another thread frees it while libtorch still reads it (benchmarks/Training/RESULTS.md).
/// Calls are named <c>Type.Method(parameter types)</c>.
/// </summary>
public static class ScalarLifetime
{
    /// <summary>"Caller calls Target" for each such call in <paramref name="code"/>, sorted.</summary>
    /// <param name="torchSharp">TorchSharp's assembly, whose own methods are read to see which of them make Scalars.</param>
    public static IReadOnlyList<string> UnheldScalarCalls(Assembly torchSharp, params Assembly[] code)
    {
        ArgumentNullException.ThrowIfNull(torchSharp);
        var creating = Il.Read(torchSharp.Location).MethodsReaching(call =>
            call.Target.StartsWith("Scalar.op_Implicit(", StringComparison.Ordinal)
            || call.Target.StartsWith("ScalarExtensionMethods.ToScalar(", StringComparison.Ordinal));
        return code
            .SelectMany(assembly => Il.Read(assembly.Location).Calls)
            .Where(call => call.Target.StartsWith("Scalar.op_Implicit(", StringComparison.Ordinal) || creating.Contains(call.Target)
                           // Optimizer.step dispatches to C# updates (AdamW's among them) full of numbers passed this way.
                           || call.Target.EndsWith(".step(Func`1<Tensor>)", StringComparison.Ordinal))
            .Select(call => $"{call.Caller} calls {call.Target}")
            .Distinct()
            .Order(StringComparer.Ordinal)
            .ToList();
    }

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
