using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace NvDinoPipeline.State.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class WorkerGpus : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<int>(
                name: "Gpus",
                table: "workers",
                type: "INTEGER",
                nullable: false,
                defaultValue: 0);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "Gpus",
                table: "workers");
        }
    }
}
