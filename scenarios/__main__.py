from scenarios.cli import main

main()
