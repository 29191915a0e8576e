import { Text } from 'ink'
import { createContext, useContext } from 'react'
import { fitSegments, type Segment } from './layout.js'

/**
 * Whether the TUI may colour (false with NO_COLOR / --no-color). Ink's chalk does not read
 * NO_COLOR, so every styled line goes through here. Bold stays: it is not a colour.
 */
export const ColorContext = createContext(true)

export interface LineProps {
  segments: Segment[]
  /** Columns the line may take; longer content is cut with an ellipsis, never wrapped. */
  width: number
  /** Reverse video (the row under the cursor): not a colour, so it stays with NO_COLOR. */
  inverse?: boolean
}

/** One terminal line of styled segments that never wraps. */
export const Line = ({ segments, width, inverse }: LineProps) => {
  const color = useContext(ColorContext)
  return (
    <Text wrap="truncate-end">
      {fitSegments(segments, width).map((s, i) => (
        <Text key={i} color={color ? s.color : undefined} bold={s.bold} dimColor={color ? s.dim : undefined} inverse={inverse}>
          {s.text}
        </Text>
      ))}
    </Text>
  )
}
