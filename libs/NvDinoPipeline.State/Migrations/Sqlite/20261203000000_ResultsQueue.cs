using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace NvDinoPipeline.State.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class ResultsQueue : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<string>(
                name: "ResultsContentType",
                table: "pipelines",
                type: "TEXT",
                maxLength: 64,
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "ResultsQueue",
                table: "pipelines",
                type: "TEXT",
                maxLength: 128,
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "ContentType",
                table: "outbox",
                type: "TEXT",
                maxLength: 64,
                nullable: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "ResultsContentType",
                table: "pipelines");

            migrationBuilder.DropColumn(
                name: "ResultsQueue",
                table: "pipelines");

            migrationBuilder.DropColumn(
                name: "ContentType",
                table: "outbox");
        }
    }
}
