// The trtexec stand-ins are shell scripts, and the tests set their execute permission.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
