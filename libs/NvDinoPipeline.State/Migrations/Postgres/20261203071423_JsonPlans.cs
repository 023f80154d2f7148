using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace NvDinoPipeline.State.Migrations.Postgres
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
                UPDATE pipelines SET "Plan" = coalesce((
                    SELECT '[' || string_agg(
                        '{"name":"' || split_part(step, ':', 1) || '","stage":"' || split_part(step, ':', 2) || '","depends_on":'
                            || CASE WHEN split_part(step, ':', 3) = '' THEN '[]'
                                ELSE '["' || replace(split_part(step, ':', 3), ',', '","') || '"]' END || '}',
                        ',' ORDER BY ord) || ']'
                    FROM unnest(string_to_array(pipelines."Plan", ';')) WITH ORDINALITY AS steps(step, ord)
                    WHERE step <> ''), '[]')
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
