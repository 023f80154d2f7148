namespace NvDinoPipeline.Specs;

/// <summary>Finds the valid key a user most likely meant by a misspelt or misplaced one.</summary>
internal static class KeySuggestions
{
    /// <summary>
    /// The closest valid key, or null when none is close. Tries, in order: a sibling under the same
    /// parent whose last segment is close or starts with the one given ("teacher" -> "teacher_type");
    /// the same last segment under another section (the section was omitted or wrong), the nearest
    /// such key if several; the closest full dotted path under another parent (a misspelt section).
    /// </summary>
    public static string? Closest(string key, IReadOnlyCollection<string> validKeys)
    {
        var (parent, leaf) = Split(key);

        var siblings = validKeys.Where(valid => Split(valid).Parent == parent).ToList();
        var sibling = Best(leaf, siblings, valid => Split(valid).Leaf)
            ?? siblings.Where(valid => leaf.Length >= 4 && Split(valid).Leaf.StartsWith(leaf, StringComparison.Ordinal))
                .OrderBy(valid => valid.Length)
                .ThenBy(valid => valid, StringComparer.Ordinal)
                .FirstOrDefault();
        if (sibling is not null)
            return sibling;

        var sameLeaf = validKeys
            .Where(valid => Split(valid).Leaf == leaf || valid.EndsWith("." + key, StringComparison.Ordinal))
            .OrderBy(valid => EditDistance.Levenshtein(key, valid))
            .ThenBy(valid => valid, StringComparer.Ordinal)
            .FirstOrDefault();
        if (sameLeaf is not null)
            return sameLeaf;

        // Siblings were judged by their last segment above; a full-path match among them would only reflect the shared prefix.
        return Best(key, validKeys.Where(valid => Split(valid).Parent != parent), valid => valid);
    }

    /// <summary>Valid keys directly under the deepest existing parent of <paramref name="key"/>, to list when nothing is close.</summary>
    public static IReadOnlyList<string> NearestSiblings(string key, IReadOnlyCollection<string> validKeys)
    {
        var parent = Split(key).Parent;
        while (parent.Length > 0)
        {
            var prefix = parent + ".";
            var children = validKeys
                .Where(valid => valid.StartsWith(prefix, StringComparison.Ordinal))
                .Select(valid => prefix + valid[prefix.Length..].Split('.')[0])
                .Distinct(StringComparer.Ordinal)
                .ToList();
            if (children.Count > 0)
                return children;
            parent = Split(parent).Parent;
        }
        return [];
    }

    private static string? Best(string target, IEnumerable<string> candidates, Func<string, string> compared)
    {
        string? best = null;
        var bestDistance = int.MaxValue;
        foreach (var candidate in candidates)
        {
            var distance = EditDistance.Levenshtein(target, compared(candidate));
            if (distance < bestDistance || (distance == bestDistance && string.CompareOrdinal(candidate, best) < 0))
                (best, bestDistance) = (candidate, distance);
        }
        return best is not null && bestDistance <= Tolerance(target) ? best : null;
    }

    // A third of the name, at least 2 edits: "num_epoch" -> "num_epochs", "lerning_rate" -> "learning_rate".
    private static int Tolerance(string name) => Math.Max(2, name.Length / 3);

    private static (string Parent, string Leaf) Split(string key)
    {
        var dot = key.LastIndexOf('.');
        return dot < 0 ? ("", key) : (key[..dot], key[(dot + 1)..]);
    }
}
