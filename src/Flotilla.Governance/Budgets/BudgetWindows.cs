using Flotilla.Fleet;

namespace Flotilla.Governance.Budgets;

/// <summary>Budget windows aligned to UTC boundaries: the minute, hour, day, ISO week (from Monday) or month a time falls in.</summary>
public static class BudgetWindows
{
    public static DateTimeOffset StartOf(BudgetWindow window, DateTimeOffset time)
    {
        var t = time.UtcDateTime;
        var start = window switch
        {
            BudgetWindow.Minute => new DateTime(t.Year, t.Month, t.Day, t.Hour, t.Minute, 0, DateTimeKind.Utc),
            BudgetWindow.Hour => new DateTime(t.Year, t.Month, t.Day, t.Hour, 0, 0, DateTimeKind.Utc),
            BudgetWindow.Day => t.Date,
            BudgetWindow.Week => t.Date.AddDays(-(((int)t.DayOfWeek + 6) % 7)),
            BudgetWindow.Month => new DateTime(t.Year, t.Month, 1, 0, 0, 0, DateTimeKind.Utc),
            _ => t.Date,
        };
        return new DateTimeOffset(start, TimeSpan.Zero);
    }

    public static DateTimeOffset EndOf(BudgetWindow window, DateTimeOffset start) => window switch
    {
        BudgetWindow.Minute => start.AddMinutes(1),
        BudgetWindow.Hour => start.AddHours(1),
        BudgetWindow.Day => start.AddDays(1),
        BudgetWindow.Week => start.AddDays(7),
        BudgetWindow.Month => start.AddMonths(1),
        _ => start.AddDays(1),
    };

    public static string Name(BudgetWindow window) => window.ToString().ToLowerInvariant();
}
