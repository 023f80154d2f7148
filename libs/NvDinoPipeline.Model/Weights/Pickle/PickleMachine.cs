using System.Buffers.Binary;
using System.Numerics;
using System.Text;

namespace NvDinoPipeline.Model.Weights.Pickle;

/// <summary>A module-qualified Python name (GLOBAL / STACK_GLOBAL) that the unpickler allowed.</summary>
internal sealed record PickleGlobal(string Module, string Name)
{
    public override string ToString() => $"{Module}.{Name}";
}

/// <summary>An object the unpickler did not rebuild: its class or factory, arguments and state, kept as data.</summary>
internal sealed class OpaqueObject(PickleGlobal type, object?[] arguments)
{
    public PickleGlobal Type { get; } = type;
    public object?[] Arguments { get; } = arguments;
    public object? State { get; set; }

    public override string ToString() => $"<{Type}>";
}

/// <summary>Python dict (and OrderedDict), insertion-ordered.</summary>
internal sealed class PickleDict
{
    private readonly List<KeyValuePair<object, object?>> items = [];
    private readonly Dictionary<object, int> positions = new(KeyComparer.Instance);

    public int Count => items.Count;

    public IEnumerable<KeyValuePair<object, object?>> Items => items;

    public void Set(object? key, object? value)
    {
        key ??= NoneKey.Instance;
        if (positions.TryGetValue(key, out var position))
        {
            items[position] = new(key, value);
        }
        else
        {
            positions[key] = items.Count;
            items.Add(new(key, value));
        }
    }

    public bool TryGet(string key, out object? value)
    {
        if (positions.TryGetValue(key, out var position))
        {
            value = items[position].Value;
            return true;
        }
        value = null;
        return false;
    }

    private sealed class NoneKey
    {
        public static readonly NoneKey Instance = new();

        public override string ToString() => "None";
    }

    // Tuples (object?[]) compare by content so that repeated tuple keys behave like Python's.
    private sealed class KeyComparer : IEqualityComparer<object>
    {
        public static readonly KeyComparer Instance = new();

        public new bool Equals(object? x, object? y) =>
            x is object?[] a && y is object?[] b ? a.SequenceEqual(b, this!) : object.Equals(x, y);

        public int GetHashCode(object obj)
        {
            if (obj is not object?[] tuple)
                return obj.GetHashCode();
            var hash = new HashCode();
            foreach (var item in tuple)
                hash.Add(item is null ? 0 : GetHashCode(item));
            return hash.ToHashCode();
        }
    }
}

/// <summary>
/// A pickle virtual machine for the data torch.save writes. It never imports or calls Python code: GLOBAL names
/// resolve only through <see cref="ResolveGlobal"/>, calls (REDUCE/NEWOBJ) only through <see cref="Call"/>, and
/// persistent ids (tensor storages) through <see cref="PersistentLoad"/>.
/// </summary>
internal sealed class PickleMachine(
    Func<PickleGlobal, PickleGlobal> resolveGlobal,
    Func<PickleGlobal, object?[], object?> call,
    Func<object?, object?> persistentLoad)
{
    private const int MaxMemo = 1 << 22;
    private const int MaxStack = 1 << 22;
    private const int MaxLine = 4096;

    private static readonly object Mark = new();

    private readonly List<object?> stack = [];
    private readonly List<int> marks = [];
    private readonly Dictionary<long, object?> memo = [];
    private byte[] data = [];
    private int position;

    public Func<PickleGlobal, PickleGlobal> ResolveGlobal { get; } = resolveGlobal;
    public Func<PickleGlobal, object?[], object?> Call { get; } = call;
    public Func<object?, object?> PersistentLoad { get; } = persistentLoad;

    public object? Load(byte[] pickle)
    {
        data = pickle;
        position = 0;
        stack.Clear();
        marks.Clear();
        memo.Clear();

        while (true)
        {
            if (position >= data.Length)
                throw Error("ends without a STOP opcode");
            var opcodeAt = position;
            var opcode = data[position++];
            switch (opcode)
            {
                case 0x80: // PROTO
                    var protocol = ReadByte();
                    if (protocol > 5)
                        throw Error($"uses pickle protocol {protocol}; at most 5 is supported");
                    break;
                case 0x95: // FRAME: framing is a buffering hint only.
                    ReadBytes(8);
                    break;
                case (byte)'.': // STOP
                    if (stack.Count != 1)
                        throw Error($"stops with {stack.Count} values on the stack instead of one");
                    return Pop();

                case (byte)'(': // MARK
                    marks.Add(stack.Count);
                    Push(Mark);
                    break;
                case (byte)'0': // POP
                    if (stack.Count > 0 && ReferenceEquals(stack[^1], Mark))
                        PopMark();
                    else
                        Pop();
                    break;
                case (byte)'1': // POP_MARK
                    PopMark();
                    break;
                case (byte)'2': // DUP
                    Push(Peek());
                    break;

                case (byte)'N': Push(null); break;
                case 0x88: Push(true); break; // NEWTRUE
                case 0x89: Push(false); break; // NEWFALSE
                case (byte)'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(ReadBytes(4))); break; // BININT
                case (byte)'K': Push((long)ReadByte()); break; // BININT1
                case (byte)'M': Push((long)BinaryPrimitives.ReadUInt16LittleEndian(ReadBytes(2))); break; // BININT2
                case 0x8a: Push(ReadLong(ReadByte())); break; // LONG1
                case 0x8b: Push(ReadLong(ReadLength(BinaryPrimitives.ReadInt32LittleEndian(ReadBytes(4))))); break; // LONG4
                case (byte)'I': Push(ParseTextInt(ReadLine())); break; // INT
                case (byte)'L': Push(ParseTextInt(ReadLine().TrimEnd('L'))); break; // LONG
                case (byte)'G': Push(BinaryPrimitives.ReadDoubleBigEndian(ReadBytes(8))); break; // BINFLOAT
                case (byte)'F': Push(double.Parse(ReadLine(), System.Globalization.CultureInfo.InvariantCulture)); break; // FLOAT

                case (byte)'X': Push(ReadUtf8(ReadLength(BinaryPrimitives.ReadUInt32LittleEndian(ReadBytes(4))))); break; // BINUNICODE
                case 0x8c: Push(ReadUtf8(ReadByte())); break; // SHORT_BINUNICODE
                case 0x8d: Push(ReadUtf8(ReadLength(BinaryPrimitives.ReadUInt64LittleEndian(ReadBytes(8))))); break; // BINUNICODE8
                case (byte)'T': Push(Encoding.Latin1.GetString(ReadBytes(ReadLength(BinaryPrimitives.ReadInt32LittleEndian(ReadBytes(4)))))); break; // BINSTRING
                case (byte)'U': Push(Encoding.Latin1.GetString(ReadBytes(ReadByte()))); break; // SHORT_BINSTRING
                case (byte)'B': Push(ReadBytes(ReadLength(BinaryPrimitives.ReadUInt32LittleEndian(ReadBytes(4)))).ToArray()); break; // BINBYTES
                case (byte)'C': Push(ReadBytes(ReadByte()).ToArray()); break; // SHORT_BINBYTES
                case 0x8e: // BINBYTES8
                case 0x96: // BYTEARRAY8
                    Push(ReadBytes(ReadLength(BinaryPrimitives.ReadUInt64LittleEndian(ReadBytes(8)))).ToArray());
                    break;

                case (byte)')': Push(Array.Empty<object?>()); break; // EMPTY_TUPLE
                case (byte)'t': Push(PopToMark().ToArray()); break; // TUPLE
                case 0x85: Push(new[] { Pop() }); break; // TUPLE1
                case 0x86: // TUPLE2
                {
                    var second = Pop();
                    var first = Pop();
                    Push(new[] { first, second });
                    break;
                }
                case 0x87: // TUPLE3
                {
                    var third = Pop();
                    var second = Pop();
                    var first = Pop();
                    Push(new[] { first, second, third });
                    break;
                }
                case (byte)']': Push(new List<object?>()); break; // EMPTY_LIST
                case (byte)'l': Push(PopToMark()); break; // LIST
                case (byte)'a': // APPEND
                {
                    var item = Pop();
                    ListOnTop("APPEND").Add(item);
                    break;
                }
                case (byte)'e': // APPENDS
                {
                    var items = PopToMark();
                    ListOnTop("APPENDS").AddRange(items);
                    break;
                }
                case 0x8f: Push(new List<object?>()); break; // EMPTY_SET, kept as a list
                case 0x90: // ADDITEMS
                {
                    var items = PopToMark();
                    ListOnTop("ADDITEMS").AddRange(items);
                    break;
                }
                case 0x91: Push(PopToMark()); break; // FROZENSET

                case (byte)'}': Push(new PickleDict()); break; // EMPTY_DICT
                case (byte)'d': // DICT
                {
                    var items = PopToMark();
                    var dict = new PickleDict();
                    SetItems(dict, items);
                    Push(dict);
                    break;
                }
                case (byte)'s': // SETITEM
                {
                    var value = Pop();
                    var key = Pop();
                    DictOnTop("SETITEM").Set(key, value);
                    break;
                }
                case (byte)'u': // SETITEMS
                {
                    var items = PopToMark();
                    SetItems(DictOnTop("SETITEMS"), items);
                    break;
                }

                case (byte)'c': // GLOBAL
                {
                    var module = ReadLine();
                    var name = ReadLine();
                    Push(ResolveGlobal(new PickleGlobal(module, name)));
                    break;
                }
                case 0x93: // STACK_GLOBAL
                {
                    var name = Pop() as string ?? throw Error("STACK_GLOBAL needs a string name");
                    var module = Pop() as string ?? throw Error("STACK_GLOBAL needs a string module");
                    Push(ResolveGlobal(new PickleGlobal(module, name)));
                    break;
                }
                case (byte)'R': // REDUCE
                {
                    var arguments = Pop() as object?[] ?? throw Error($"REDUCE at offset {opcodeAt} needs an argument tuple");
                    var callable = Pop() as PickleGlobal ?? throw Error($"REDUCE at offset {opcodeAt} calls something that is not a global");
                    Push(Call(callable, arguments));
                    break;
                }
                case 0x81: // NEWOBJ
                {
                    var arguments = Pop() as object?[] ?? throw Error($"NEWOBJ at offset {opcodeAt} needs an argument tuple");
                    var type = Pop() as PickleGlobal ?? throw Error($"NEWOBJ at offset {opcodeAt} needs a class");
                    Push(Call(type, arguments));
                    break;
                }
                case 0x92: // NEWOBJ_EX
                {
                    Pop(); // keyword arguments
                    var arguments = Pop() as object?[] ?? throw Error($"NEWOBJ_EX at offset {opcodeAt} needs an argument tuple");
                    var type = Pop() as PickleGlobal ?? throw Error($"NEWOBJ_EX at offset {opcodeAt} needs a class");
                    Push(Call(type, arguments));
                    break;
                }
                case (byte)'b': // BUILD
                {
                    var state = Pop();
                    switch (Peek())
                    {
                        case OpaqueObject opaque:
                            opaque.State = state;
                            break;
                        case PickleDict:
                            // OrderedDict attributes such as a state dict's _metadata: not needed.
                            break;
                        default:
                            if (Peek() is not (TorchTensorReference or null))
                                throw Error($"BUILD at offset {opcodeAt} targets a {Describe(Peek())}");
                            break;
                    }
                    break;
                }
                case (byte)'Q': // BINPERSID
                    Push(PersistentLoad(Pop()));
                    break;

                case (byte)'q': Memoize(ReadByte()); break; // BINPUT
                case (byte)'r': Memoize(BinaryPrimitives.ReadUInt32LittleEndian(ReadBytes(4))); break; // LONG_BINPUT
                case (byte)'p': Memoize(ParseMemoIndex(ReadLine())); break; // PUT
                case 0x94: Memoize(memo.Count); break; // MEMOIZE
                case (byte)'h': Push(Recall(ReadByte())); break; // BINGET
                case (byte)'j': Push(Recall(BinaryPrimitives.ReadUInt32LittleEndian(ReadBytes(4)))); break; // LONG_BINGET
                case (byte)'g': Push(Recall(ParseMemoIndex(ReadLine()))); break; // GET

                default:
                    throw Error($"uses pickle opcode 0x{opcode:x2} at offset {opcodeAt}, which this reader does not support");
            }
        }
    }

    private static string Describe(object? value) => value switch
    {
        null => "None",
        object?[] => "tuple",
        List<object?> => "list",
        PickleDict => "dict",
        _ => value.GetType().Name,
    };

    private InvalidDataException Error(string message) => new($"The pickle {message}.");

    private void Push(object? value)
    {
        if (stack.Count >= MaxStack)
            throw Error("grows its stack beyond the supported depth");
        stack.Add(value);
    }

    private object? Pop()
    {
        if (stack.Count == 0)
            throw Error("pops from an empty stack");
        var value = stack[^1];
        if (ReferenceEquals(value, Mark))
            throw Error("pops a MARK as a value");
        stack.RemoveAt(stack.Count - 1);
        return value;
    }

    private object? Peek()
    {
        if (stack.Count == 0 || ReferenceEquals(stack[^1], Mark))
            throw Error("reads a value from an empty stack");
        return stack[^1];
    }

    private void PopMark() => PopToMark();

    private List<object?> PopToMark()
    {
        if (marks.Count == 0)
            throw Error("closes a MARK that was never set");
        var start = marks[^1];
        marks.RemoveAt(marks.Count - 1);
        var items = stack.GetRange(start + 1, stack.Count - start - 1);
        stack.RemoveRange(start, stack.Count - start);
        return items;
    }

    private List<object?> ListOnTop(string opcode) =>
        Peek() as List<object?> ?? throw Error($"applies {opcode} to a {Describe(Peek())}");

    private PickleDict DictOnTop(string opcode) =>
        Peek() as PickleDict ?? throw Error($"applies {opcode} to a {Describe(Peek())}");

    private void SetItems(PickleDict dict, List<object?> items)
    {
        if (items.Count % 2 != 0)
            throw Error("sets a dictionary from an odd number of values");
        for (var i = 0; i < items.Count; i += 2)
            dict.Set(items[i], items[i + 1]);
    }

    private void Memoize(long index)
    {
        if (memo.Count >= MaxMemo && !memo.ContainsKey(index))
            throw Error("memoizes more values than supported");
        memo[index] = Peek();
    }

    private object? Recall(long index) =>
        memo.TryGetValue(index, out var value) ? value : throw Error($"recalls memo entry {index}, which was never stored");

    private byte ReadByte()
    {
        if (position >= data.Length)
            throw Error("ends inside an opcode");
        return data[position++];
    }

    private ReadOnlySpan<byte> ReadBytes(int count)
    {
        if (count < 0 || count > data.Length - position)
            throw Error($"declares {count} bytes where only {data.Length - position} remain");
        var span = data.AsSpan(position, count);
        position += count;
        return span;
    }

    private int ReadLength(long length)
    {
        if (length < 0 || length > data.Length - position)
            throw Error($"declares {length} bytes where only {data.Length - position} remain");
        return (int)length;
    }

    private int ReadLength(ulong length) => ReadLength(length > int.MaxValue ? -1L : (long)length);

    private string ReadUtf8(int count)
    {
        try
        {
            return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(ReadBytes(count));
        }
        catch (DecoderFallbackException ex)
        {
            throw new InvalidDataException("The pickle holds a string that is not valid UTF-8.", ex);
        }
    }

    private string ReadLine()
    {
        var end = Array.IndexOf(data, (byte)'\n', position, Math.Min(MaxLine, data.Length - position));
        if (end < 0)
            throw Error("has an unterminated or overlong text argument");
        var line = Encoding.ASCII.GetString(data, position, end - position);
        position = end + 1;
        return line;
    }

    private object ReadLong(int count)
    {
        if (count == 0)
            return 0L;
        var value = new BigInteger(ReadBytes(count), isUnsigned: false, isBigEndian: false);
        return value >= long.MinValue && value <= long.MaxValue ? (long)value : value;
    }

    private object ParseTextInt(string text) => text switch
    {
        "00" => false,
        "01" => true,
        _ => long.TryParse(text, System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out var value)
            ? value
            : throw Error($"has an integer literal '{text}' that does not fit 64 bits"),
    };

    private long ParseMemoIndex(string text) =>
        long.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var value)
            ? value
            : throw Error($"has a memo index '{text}' that is not a number");
}
