using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace NvDinoPipeline.State.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class JsonPlans : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            // Plans stored in the colon form of earlier releases ("stage-train:Staging:;train:Training:stage-train") become
            // the JSON that PipelineStep.Serialize writes, so any reader of the state database reads the plan as JSON.
            migrationBuilder.Sql("""
                WITH RECURSIVE steps(id, ord, step, rest) AS (
                    SELECT "Id", 0, '', "Plan" || ';' FROM pipelines WHERE "Plan" NOT LIKE '[%'
                    UNION ALL
                    SELECT id, ord + 1, substr(rest, 1, instr(rest, ';') - 1), substr(rest, instr(rest, ';') + 1) FROM steps WHERE rest <> ''
                ),
                parts(id, ord, name, tail) AS (
                    SELECT id, ord, substr(step, 1, instr(step, ':') - 1), substr(step, instr(step, ':') + 1) FROM steps WHERE step <> ''
                ),
                json_steps(id, ord, json) AS (
                    SELECT id, ord, '{"name":"' || name || '","stage":"' || substr(tail, 1, instr(tail, ':') - 1) || '","depends_on":'
                        || CASE WHEN substr(tail, instr(tail, ':') + 1) = '' THEN '[]'
                            ELSE '["' || replace(substr(tail, instr(tail, ':') + 1), ',', '","') || '"]' END || '}'
                    FROM parts
                ),
                plans(id, plan) AS (
                    SELECT id, '[' || group_concat(json, ',' ORDER BY ord) || ']' FROM json_steps GROUP BY id
                )
                UPDATE pipelines SET "Plan" = coalesce((SELECT plan FROM plans WHERE plans.id = pipelines."Id"), '[]')
                WHERE "Plan" NOT LIKE '[%';
                """);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            // Nothing to undo: the release before this migration reads JSON plans too.
        }
    }
}
