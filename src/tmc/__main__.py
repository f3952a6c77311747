from tmc.cli.main import main

main()
