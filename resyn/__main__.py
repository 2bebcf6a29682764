from resyn.cli import main

main()
