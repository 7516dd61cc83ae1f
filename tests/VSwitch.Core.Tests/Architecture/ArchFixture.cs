// A deliberately broken layering for the architecture rules' self-test: Wire names Pipeline.
namespace VSwitch.Core.Tests.Architecture.ArchFixture.Pipeline
{
    public sealed class Stage
    {
        public int Kept;
    }
}

namespace VSwitch.Core.Tests.Architecture.ArchFixture.Wire
{
    public sealed class BadHeader
    {
        public Pipeline.Stage? Owner;
    }

    public sealed class GoodHeader
    {
        public int Length;
    }
}
